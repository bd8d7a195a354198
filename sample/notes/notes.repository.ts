import { Injectable } from '@nestjs/common';
import { currentConnection } from 'nestjs-pg-pool/nest';
import type { Note } from './note.js';

interface NoteRow {
  id: number;
  title: string;
  tags: string[];
  created_at: Date;
}

const SELECT_NOTES = `
  SELECT n.id, n.title, n.created_at,
         coalesce(array_agg(t.tag ORDER BY t.tag) FILTER (WHERE t.tag IS NOT NULL), '{}') AS tags
    FROM notes n LEFT JOIN note_tags t ON t.note_id = n.id`;

/**
 * SQL for notes. It never acquires a connection itself: it uses the request's, through
 * `currentConnection()`, so it runs inside whatever transaction the controller opened.
 */
@Injectable()
export class NotesRepository {
  async list(): Promise<Note[]> {
    const { rows } = await currentConnection().query<NoteRow>(`${SELECT_NOTES} GROUP BY n.id ORDER BY n.id`);
    return rows.map(toNote);
  }

  async find(id: number): Promise<Note | undefined> {
    const { rows } = await currentConnection().query<NoteRow>(`${SELECT_NOTES} WHERE n.id = $1 GROUP BY n.id`, [id]);
    return rows[0] && toNote(rows[0]);
  }

  async insert(title: string): Promise<number> {
    const { rows } = await currentConnection().query<{ id: number }>('INSERT INTO notes (title) VALUES ($1) RETURNING id', [title]);
    return rows[0].id;
  }

  async addTags(noteId: number, tags: string[]): Promise<void> {
    for (const tag of tags) {
      await currentConnection().query('INSERT INTO note_tags (note_id, tag) VALUES ($1, $2)', [noteId, tag]);
    }
  }

  async delete(id: number): Promise<boolean> {
    const { rowCount } = await currentConnection().query('DELETE FROM notes WHERE id = $1', [id]);
    return rowCount === 1;
  }
}

function toNote(row: NoteRow): Note {
  return { id: row.id, title: row.title, tags: row.tags, createdAt: row.created_at.toISOString() };
}
