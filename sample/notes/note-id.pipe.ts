import { BadRequestException, Injectable, NotFoundException, type PipeTransform } from '@nestjs/common';

/** The largest `serial` id: past it PostgreSQL fails the query (22003) rather than find nothing. */
const MAX_ID = 2_147_483_647;

/**
 * A note id from the path: a positive integer, else 400; one past the column's range
 * cannot name a note, so 404, as any id that does not exist.
 */
@Injectable()
export class NoteIdPipe implements PipeTransform<string, number> {
  transform(value: string): number {
    if (!/^\d+$/.test(value)) throw new BadRequestException(`note id must be a positive integer, not ${JSON.stringify(value)}`);
    const id = Number(value);
    if (id < 1 || id > MAX_ID) throw new NotFoundException(`note ${value} does not exist`);
    return id;
  }
}
