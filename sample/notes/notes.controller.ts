import { BadRequestException, Body, Controller, Delete, Get, HttpCode, NotFoundException, Param, ParseIntPipe, Post } from '@nestjs/common';
import { UseConnection } from 'nestjs-pg-pool/nest';
import type { CreateNoteBody, Note } from './note.js';
import { NotesRepository } from './notes.repository.js';

/** PostgreSQL's SQLSTATE for a CHECK constraint violation. */
const CHECK_VIOLATION = '23514';

/** Every route gets a request-scoped connection; creating a note is one transaction. */
@Controller('notes')
@UseConnection()
export class NotesController {
  constructor(private readonly notes: NotesRepository) {}

  @Get()
  list(): Promise<Note[]> {
    return this.notes.list();
  }

  @Get(':id')
  async get(@Param('id', ParseIntPipe) id: number): Promise<Note> {
    const note = await this.notes.find(id);
    if (!note) throw new NotFoundException(`note ${id} does not exist`);
    return note;
  }

  /**
   * The note and its tags are written in one transaction: a bad tag (the table's CHECK
   * allows lower-case words and dashes) fails the request and leaves no note behind.
   */
  @Post()
  @UseConnection({ transaction: true })
  async create(@Body() body: CreateNoteBody): Promise<Note> {
    if (typeof body?.title !== 'string' || body.title.trim() === '') throw new BadRequestException('title is required');
    const id = await this.notes.insert(body.title);
    try {
      await this.notes.addTags(id, body.tags ?? []);
    } catch (error) {
      if ((error as { code?: string }).code === CHECK_VIOLATION) {
        throw new BadRequestException('tags must be lower-case words (a-z, 0-9, -)');
      }
      throw error;
    }
    return (await this.notes.find(id)) as Note;
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Param('id', ParseIntPipe) id: number): Promise<void> {
    if (!(await this.notes.delete(id))) throw new NotFoundException(`note ${id} does not exist`);
  }
}
