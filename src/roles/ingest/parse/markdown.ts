// Markdown → document model through marked's lexer (the token stream, no HTML rendering): headings give the path,
// and inline markup is reduced to its visible text so "**bold** [link](url)" indexes as "bold link".
import { Lexer, type Token, type Tokens } from 'marked';
import type { ParsedDocument } from '../../../core/document-model.js';
import { DocumentBuilder, squash } from './builder.js';
import { MIME } from './detect.js';

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", apos: "'", nbsp: ' ' };

function decodeEntities(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|#39|apos|nbsp);/g, (_, e: string) => ENTITIES[e] ?? _);
}

/** Visible text of inline tokens. */
function inline(tokens: Token[] | undefined, fallback = ''): string {
  if (!tokens) return decodeEntities(fallback);
  return tokens
    .map((t): string => {
      switch (t.type) {
        case 'text':
          return 'tokens' in t && t.tokens ? inline(t.tokens) : decodeEntities(t.text);
        case 'strong':
        case 'em':
        case 'del':
        case 'link':
          return inline((t as Tokens.Strong).tokens, (t as Tokens.Strong).text);
        case 'image':
          return (t as Tokens.Image).text;
        case 'codespan':
          return decodeEntities((t as Tokens.Codespan).text);
        case 'br':
          return '\n';
        case 'html':
          return '';
        case 'escape':
          return (t as Tokens.Escape).text;
        default:
          return 'text' in t && typeof t.text === 'string' ? decodeEntities(t.text) : '';
      }
    })
    .join('');
}

function listLines(list: Tokens.List, depth: number, out: string[]): void {
  list.items.forEach((item, i) => {
    const marker = list.ordered ? `${(typeof list.start === 'number' ? list.start : 1) + i}.` : '-';
    const own: string[] = [];
    for (const t of item.tokens) {
      if (t.type === 'list') continue;
      own.push(t.type === 'text' || t.type === 'paragraph' ? inline((t as Tokens.Text).tokens, (t as Tokens.Text).text) : 'text' in t ? String(t.text) : '');
    }
    const check = item.task ? (item.checked ? '[x] ' : '[ ] ') : '';
    out.push(`${'  '.repeat(depth)}${marker} ${check}${squash(own.join(' '))}`);
    for (const t of item.tokens) if (t.type === 'list') listLines(t as Tokens.List, depth + 1, out);
  });
}

export function parseMarkdown(source: string): ParsedDocument {
  const b = new DocumentBuilder();
  const walk = (tokens: Token[]) => {
    for (const t of tokens) {
      switch (t.type) {
        case 'heading':
          b.heading((t as Tokens.Heading).depth, inline((t as Tokens.Heading).tokens, (t as Tokens.Heading).text));
          break;
        case 'paragraph':
          b.block('paragraph', inline((t as Tokens.Paragraph).tokens, (t as Tokens.Paragraph).text));
          break;
        case 'text':
          b.block('paragraph', inline((t as Tokens.Text).tokens, (t as Tokens.Text).text));
          break;
        case 'code':
          b.block('code', (t as Tokens.Code).text);
          break;
        case 'list': {
          const out: string[] = [];
          listLines(t as Tokens.List, 0, out);
          b.block('list', out.join('\n'));
          break;
        }
        case 'table': {
          const table = t as Tokens.Table;
          const row = (cells: Tokens.TableCell[]) => cells.map((c) => squash(inline(c.tokens, c.text))).join(' | ');
          b.block('table', [row(table.header), ...table.rows.map(row)].join('\n'));
          break;
        }
        case 'blockquote':
          walk((t as Tokens.Blockquote).tokens);
          break;
        case 'html': {
          // Raw HTML blocks: keep their visible text, drop comments and tags.
          const text = (t as Tokens.HTML).text.replace(/<!--[\s\S]*?-->/g, '').replace(/<[^>]+>/g, ' ');
          b.block('paragraph', decodeEntities(text));
          break;
        }
        default:
          break; // space, hr, def (link reference definitions)
      }
    }
  };
  // Front matter (--- yaml ---) is metadata, not prose; marked would read it as a rule and a setext heading.
  const body = source.replace(/^\uFEFF?---\r?\n[\s\S]*?\r?\n---\r?\n/, '');
  walk(new Lexer({ gfm: true }).lex(body));
  return b.build(MIME.markdown, b.firstHeading);
}
