import { Catch, HttpStatus, type ArgumentsHost } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { DatabaseError } from 'pg';

/** SQLSTATEs a client's request can cause, and the answer each deserves. */
const ANSWERS: Record<string, { status: HttpStatus; message: string }> = {
  '23505': { status: HttpStatus.CONFLICT, message: 'already exists' },
  '23503': { status: HttpStatus.NOT_FOUND, message: 'refers to something that does not exist' },
  '23514': { status: HttpStatus.BAD_REQUEST, message: 'breaks a rule of the data' },
  '22001': { status: HttpStatus.BAD_REQUEST, message: 'a value is too long' },
  '22003': { status: HttpStatus.BAD_REQUEST, message: 'a number is out of range' },
  '22021': { status: HttpStatus.BAD_REQUEST, message: 'a text contains a NUL character' },
  '22P02': { status: HttpStatus.BAD_REQUEST, message: 'a value has the wrong format' },
};

/**
 * The safety net behind validation: a database error caused by the request's data (a
 * duplicate, a value out of range) is a 4xx that says so, not a 500. Other database
 * errors go to Nest's own handling: a 500, logged. The pool's own errors (busy, down) are the module's
 * filter's: 503.
 */
@Catch(DatabaseError)
export class DatabaseErrorFilter extends BaseExceptionFilter<DatabaseError> {
  override catch(error: DatabaseError, host: ArgumentsHost): void {
    const answer = error.code ? ANSWERS[error.code] : undefined;
    if (!answer) return super.catch(error, host);
    const response = host.switchToHttp().getResponse<{ status(code: number): { json(body: unknown): void } }>();
    const detail = error.constraint ? ` (${error.constraint})` : '';
    response.status(answer.status).json({ statusCode: answer.status, message: `${answer.message}${detail}`, code: error.code });
  }
}
