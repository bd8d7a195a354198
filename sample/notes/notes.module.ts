import { Module } from '@nestjs/common';
import { PgPoolModule } from 'nestjs-pg-pool/nest';
import { NotesController } from './notes.controller.js';
import { NotesRepository } from './notes.repository.js';

@Module({
  imports: [PgPoolModule.forFeature(['default'])],
  controllers: [NotesController],
  providers: [NotesRepository],
})
export class NotesModule {}
