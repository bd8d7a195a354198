/**
 * Where the parts of a `postgresql://user:password@host1:port1,host2/db?query` URL's
 * authority are, by index into the URL. Written for strings `new URL()` rejects (a raw
 * `@ : / ? #` in the password, a host list), which users do paste. The user info ends at
 * the last `@` before the query string; when the password itself holds a `?` or `#`, at
 * the last `@` of all. Shared by the host-list parser and the redaction of URLs.
 */
export interface UrlAuthority {
  /** Where the authority starts: just after `://`. */
  start: number;
  /** The `@` that ends the user info, or -1 when there is none. */
  at: number;
  /** Where the host part starts (after the `@`, or at `start`). */
  hostStart: number;
  /** Where the host part ends: at the `/`, `?` or `#` after it, or the URL's end. */
  hostEnd: number;
}

/** The authority of a URL with a `scheme://`; undefined for anything else. */
export function urlAuthority(url: string): UrlAuthority | undefined {
  const schemeEnd = url.indexOf('://');
  if (schemeEnd === -1) return undefined;
  const start = schemeEnd + 3;
  const rest = url.slice(start);
  const queryStart = rest.search(/[?#]/);
  let at = rest.lastIndexOf('@', queryStart === -1 ? rest.length : queryStart);
  if (at === -1 && queryStart !== -1) at = rest.lastIndexOf('@');
  const hostStart = at + 1;
  const hostLength = rest.slice(hostStart).search(/[/?#]/);
  return {
    start,
    at: at === -1 ? -1 : start + at,
    hostStart: start + hostStart,
    hostEnd: hostLength === -1 ? url.length : start + hostStart + hostLength,
  };
}
