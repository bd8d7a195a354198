import { ArrayMaxSize, ArrayUnique, IsArray, IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';

/** A note as the API returns it. */
export interface Note {
  id: number;
  title: string;
  tags: string[];
  createdAt: string;
}

/** A tag: what the `note_tags` CHECK constraint allows, checked before the database sees it. */
const TAG = /^[a-z0-9-]+$/;
/** PostgreSQL text cannot hold a NUL character (SQLSTATE 22021): refused up front. */
const NO_NUL = /^[^\u0000]*$/;

/**
 * What POST /notes takes, checked by Nest's ValidationPipe (class-validator). The pipe
 * stops at a property's first error, and decorators run from the bottom up: the most
 * basic check sits next to the property, so `"tags": "abc"` is told it is not an array.
 */
export class CreateNoteBody {
  @MaxLength(200)
  @Matches(NO_NUL, { message: 'title must not contain a NUL character' })
  @Matches(/\S/, { message: 'title must not be blank' })
  @IsNotEmpty()
  @IsString()
  title!: string;

  @ArrayUnique({ message: 'tags must not repeat' })
  @Matches(TAG, { each: true, message: 'each tag must be lower-case words (a-z, 0-9, -)' })
  @MaxLength(64, { each: true })
  @IsString({ each: true })
  @ArrayMaxSize(20)
  @IsArray()
  @IsOptional()
  tags?: string[];
}

/** What POST /notes/:id/tags takes. */
export class AddTagBody {
  @Matches(TAG, { message: 'tag must be lower-case words (a-z, 0-9, -)' })
  @IsString()
  tag!: string;
}
