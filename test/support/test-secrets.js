/**
 * The password of the test server: every character class that breaks naive URL handling
 * (`@ : / %`, non-ASCII), so redaction is tested on the real thing. Tests assert it
 * never appears in an error, a log line, an event or a stats object.
 */
export const TEST_PASSWORD = 'p@ss:w/rd%ü-5ecret';
