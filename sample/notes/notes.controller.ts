import { Body, Controller, Delete, Get, HttpCode, NotFoundException, Param, Post } from '@nestjs/common';
import { UseConnection } from 'nestjs-pg-pool/nest';
import { AddTagBody, CreateNoteBody, type Note } from './note.js';
import { NoteIdPipe } from './note-id.pipe.js';
import { NotesRepository } from './notes.repository.js';

/**
 * Every route gets a request-scoped connection; creating a note is one transaction.
 * Bodies are checked by the ValidationPipe (400 with what is wrong), ids by `NoteIdPipe`;
 * a duplicate tag is a 409 (see DatabaseErrorFilter).
 */
@Controller('notes')
@UseConnection()
export class NotesController {
  constructor(private readonly notes: NotesRepository) {}

  @Get()
  list(): Promise<Note[]> {
    return this.notes.list();
  }

  @Get(':id')
  async get(@Param('id', NoteIdPipe) id: number): Promise<Note> {
    return this.existing(id);
  }

  /** The note and its tags are written in one transaction: a failure leaves no note behind. */
  @Post()
  @UseConnection({ transaction: true })
  async create(@Body() body: CreateNoteBody): Promise<Note> {
    const id = await this.notes.insert(body.title);
    await this.notes.addTags(id, body.tags ?? []);
    return this.existing(id);
  }

  /** Adds one tag; the same tag twice is a 409 (the primary key refuses it: SQLSTATE 23505). */
  @Post(':id/tags')
  @UseConnection({ transaction: true })
  async addTag(@Param('id', NoteIdPipe) id: number, @Body() body: AddTagBody): Promise<Note> {
    await this.existing(id);
    await this.notes.addTags(id, [body.tag]);
    return this.existing(id);
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Param('id', NoteIdPipe) id: number): Promise<void> {
    if (!(await this.notes.delete(id))) throw new NotFoundException(`note ${id} does not exist`);
  }

  private async existing(id: number): Promise<Note> {
    const note = await this.notes.find(id);
    if (!note) throw new NotFoundException(`note ${id} does not exist`);
    return note;
  }
}
