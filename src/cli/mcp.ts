import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Command } from 'commander';
import { openBackend, type ConnectionOptions } from './ingest.js';

// `docupod mcp [--workspace W] [--url URL --api-key KEY]`: MCP on stdin/stdout for desktop agents (Claude Desktop,
// Claude Code, Cursor, VS Code). Like every other command it goes through docupod's HTTP API, found the usual way
// (local-server.ts): here that API is the server's own MCP endpoint, POST /mcp, and this process relays JSON-RPC
// messages between stdio and it. So the tools, their checks and their errors are the server's, with no second
// implementation; --workspace becomes the endpoint's default workspace (?workspace=). stdout carries only protocol
// messages: everything else goes to stderr.

interface McpCommandOptions extends ConnectionOptions {
  workspace?: string;
}

/** The server's own words for a failed exchange (its problem+json detail), with a hint for a refused key. */
function describe(err: Error): string {
  const problem = /(\{.*\})\s*$/s.exec(err.message)?.[1];
  let detail = err.message;
  let status: number | undefined;
  try {
    const p = problem ? (JSON.parse(problem) as { detail?: string; status?: number }) : undefined;
    if (p?.detail) [detail, status] = [p.detail, p.status];
  } catch {
    /* not problem+json: keep the message */
  }
  return status === 401 ? `${detail} (check --api-key / DOCUPOD_API_KEY)` : detail;
}

const isRequest = (m: JSONRPCMessage): m is JSONRPCMessage & { id: string | number; method: string } => 'method' in m && 'id' in m;

export async function mcpCommand(opts: McpCommandOptions): Promise<void> {
  const backend = await openBackend(opts);
  const stop = async () => {
    await backend.close().catch(() => {});
  };
  let workspace: string | undefined;
  try {
    // A misspelt workspace is found now, with a clear message, rather than on the agent's first call; a name
    // ("My Docs") is passed on as the slug it resolved to, as the other commands resolve --workspace.
    if (opts.workspace) workspace = (await backend.workspace(opts.workspace, false)).slug;
  } catch (err) {
    await stop();
    throw err;
  }
  const { url, token } = backend.endpoint;
  const endpoint = new URL(`${url}/mcp`);
  if (workspace) endpoint.searchParams.set('workspace', workspace);
  const upstream = new StreamableHTTPClientTransport(endpoint, { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  const local = new StdioServerTransport();
  const initializing = new Set<string | number>();

  local.onmessage = (message) => {
    if (isRequest(message) && message.method === 'initialize') initializing.add(message.id);
    upstream.send(message).catch((err: Error) => {
      // The server never answered (unreachable, 401, 413…): the agent still gets an answer to its request.
      const why = describe(err);
      process.stderr.write(`docupod mcp: ${why}\n`);
      if (isRequest(message)) void local.send({ jsonrpc: '2.0', id: message.id, error: { code: -32603, message: `docupod: ${why}` } });
    });
  };
  upstream.onmessage = (message) => {
    // Later requests carry the negotiated protocol version in their header, as the SDK's own client does.
    if ('id' in message && 'result' in message && initializing.delete(message.id as string | number)) {
      const version = (message.result as { protocolVersion?: unknown }).protocolVersion;
      if (typeof version === 'string') upstream.setProtocolVersion(version);
    }
    void local.send(message);
  };
  // Every failure of a POST also rejects its send() above, which reports it once; stateless, there is no other stream.
  upstream.onerror = () => {};
  local.onerror = (err) => process.stderr.write(`docupod mcp: ${err.message}\n`);

  await upstream.start();
  await local.start();
  process.stderr.write(`docupod mcp: serving MCP on stdio through ${endpoint.origin}${workspace ? ` (workspace ${workspace})` : ''}\n`);
  // The agent ends the session by closing stdin (or with a signal): then stop the server this command may have started.
  await new Promise<void>((resolve) => {
    process.stdin.once('end', resolve);
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await local.close();
  await upstream.close();
  await stop();
}

export function registerMcpCommand(program: Command): void {
  program
    .command('mcp')
    .description('serve MCP (Model Context Protocol) on stdin/stdout for desktop agents: search, read and ask your documents')
    .option('--workspace <name>', 'default workspace of the tools (slug or id); without it, tools name one or use your only workspace')
    .option('--url <url>', 'a docupod server to use instead of the local data directory’s (env DOCUPOD_URL)')
    .option('--api-key <key>', 'API key for --url (env DOCUPOD_API_KEY)')
    .action(mcpCommand);
}
