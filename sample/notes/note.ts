/** A note as the API returns it. */
export interface Note {
  id: number;
  title: string;
  tags: string[];
  createdAt: string;
}

/** What POST /notes takes. */
export interface CreateNoteBody {
  title: string;
  tags?: string[];
}
