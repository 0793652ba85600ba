import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'dotenv';

/**
 * process.env over the variables of a `.env` file in the working directory, if there is one. Real environment
 * variables win, as 12-factor tools expect. dotenv's parser is used directly so it never mutates process.env.
 */
export function readEnv(env: NodeJS.ProcessEnv = process.env, file = '.env'): Record<string, string | undefined> {
  const fromFile = existsSync(file) ? parse(readFileSync(file)) : {};
  return { ...fromFile, ...env };
}
