import { Command, CommanderError } from 'commander';
import { ConfigError } from './config/schema.js';
import { RoleError } from './modules/graph.js';
import { VERSION } from './modules/runtime.js';
import { serve } from './cli/serve.js';
import { configCommand, listRolesCommand, migrateCommand } from './cli/admin.js';
import { registerAuthCommands } from './cli/auth.js';
import { registerModelsCommands } from './cli/models.js';
import { registerSearchCommands } from './cli/search.js';
import { registerAskCommand } from './cli/ask.js';
import { registerMcpCommand } from './cli/mcp.js';

// Reads argv once, dispatches to a command. Errors a user can fix print one clear message and exit 1/2, no stack.

export function buildCli(): Command {
  const program = new Command('docupod')
    .description('Chat with your documents and serve models — one program, many roles')
    .version(VERSION)
    .showHelpAfterError();

  program
    .command('serve')
    .description('run the server (all roles on embedded defaults unless told otherwise)')
    .option('--role <roles>', 'all, or a comma list of gateway,ingest,retrieval,chat,models,web (env DOCUPOD_ROLE)')
    .option('--port <port>', 'port to listen on (env DOCUPOD_PORT, default 8080)')
    .option('--host <host>', 'address to bind (env DOCUPOD_HOST, default 0.0.0.0)')
    .action(serve);

  program.command('migrate').description('apply database migrations').action(migrateCommand);
  program.command('config').description('print the effective configuration, secrets redacted').action(configCommand);
  program.command('list-roles').description('list roles and the modules each one starts').action(listRolesCommand);
  registerAuthCommands(program);
  registerModelsCommands(program);
  registerSearchCommands(program);
  registerAskCommand(program);
  registerMcpCommand(program);
  return program;
}

async function main(): Promise<void> {
  // A rejection nobody awaited (e.g. inside a library's background work) must end the process with a clear line,
  // not leave it half-running; Kubernetes restarts it.
  process.on('unhandledRejection', (reason) => {
    console.error(`docupod: unexpected error: ${reason instanceof Error ? reason.message : String(reason)}`);
    if (process.env.DOCUPOD_DEBUG && reason instanceof Error) console.error(reason.stack);
    process.exit(1);
  });
  try {
    await buildCli().parseAsync(process.argv);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof RoleError) {
      console.error(`docupod: ${err.message}`);
      process.exit(2);
    }
    if (err instanceof CommanderError) process.exit(err.exitCode);
    const e = err as Error & { expectedByUser?: boolean };
    console.error(`docupod: ${e.message}`);
    if (process.env.DOCUPOD_DEBUG) console.error(e.stack);
    process.exit(1);
  }
}

await main();
