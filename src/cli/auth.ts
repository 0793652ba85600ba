import type { Command } from 'commander';

/** `docupod user create` and `docupod apikey create` (filled in by the auth work). */
export function registerAuthCommands(_program: Command): void {}
