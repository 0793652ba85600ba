// HTML → document model with htmlparser2's streaming parser (a real tokenizer: entities, implied end tags, CDATA).
// Headings h1..h6 become the heading path; script/style and navigation are dropped because their text is noise in
// search results and would be cited back to users.
import { Parser } from 'htmlparser2';
import type { ParsedDocument } from '../../../core/document-model.js';
import { DocumentBuilder, squash } from './builder.js';
import { MIME } from './detect.js';

/** Elements whose whole subtree carries no document text. */
const DROP = new Set([
  'script', 'style', 'noscript', 'template', 'nav', 'svg', 'math', 'iframe', 'object', 'canvas', 'select', 'button',
  'head',
]);
/**
 * Navigation that is not marked up as <nav>. The DocBook XSL stylesheets (Debian Reference, many manuals) put
 * prev/next bars in div.navheader/div.navfooter and a table of contents in div.toc, which repeats every heading.
 */
const DROP_CLASSES = new Set(['navheader', 'navfooter', 'toc', 'list-of-tables', 'list-of-figures']);
/** Elements that end the running paragraph. */
const BLOCK = new Set([
  'p', 'div', 'section', 'article', 'main', 'header', 'footer', 'aside', 'blockquote', 'figure', 'figcaption',
  'address', 'details', 'summary', 'dl', 'dt', 'dd', 'hr', 'br', 'form', 'fieldset', 'center', 'body', 'html',
]);

interface Table {
  rows: string[][];
  row: string[] | null;
  cell: string | null;
}

/**
 * Navigation is dropped as noise, unless it is all the page has: a table-of-contents or links-only page (a manual's
 * index pages) then indexes its visible text rather than being refused as empty.
 */
export function parseHtml(html: string, mime: string = MIME.html): ParsedDocument {
  const doc = parseHtmlWith(html, mime, false);
  return doc.sections.some((s) => s.blocks.some((b) => b.text.trim())) ? doc : parseHtmlWith(html, mime, true);
}

function parseHtmlWith(html: string, mime: string, keepNavigation: boolean): ParsedDocument {
  const b = new DocumentBuilder();
  let title: string | undefined;
  const stack: Array<{ name: string; drop: boolean }> = [];
  let dropDepth = 0;
  let inTitle = false;
  let titleText = '';
  let paragraph = '';
  let heading: { level: number; text: string } | null = null;
  let pre: string | null = null;
  let preDepth = 0;
  const tables: Table[] = [];
  // Lists: one buffer of finished lines per outermost list, plus the item being written at each depth.
  let listLines: string[] = [];
  const items: Array<string | null> = [];

  const flushParagraph = () => {
    if (paragraph.trim()) b.block('paragraph', paragraph);
    paragraph = '';
  };
  const flushItem = (depth: number) => {
    const text = items[depth];
    if (text != null && squash(text)) listLines.push(`${'  '.repeat(depth)}- ${squash(text)}`);
    items[depth] = '';
  };
  // A list's slot is null until its first <li>; text before it (usually the whitespace between <ul> and <li>) must
  // not turn that null into the string "null" (which became "- null" lines in every list, and indexed words).
  const appendItem = (text: string) => {
    items[items.length - 1] = (items[items.length - 1] ?? '') + text;
  };
  const addText = (text: string) => {
    if (inTitle) titleText += text;
    else if (heading) heading.text += text;
    else if (pre !== null) pre += text;
    else if (tables.length > 0) {
      const t = tables[tables.length - 1]!;
      if (t.cell !== null) t.cell += text;
    } else if (items.length > 0) appendItem(text);
    else paragraph += text;
  };

  const parser = new Parser(
    {
      onopentag(name, attribs) {
        const classes = (attribs.class ?? '').split(/\s+/);
        const navigation = name === 'nav' || attribs.role === 'navigation' || classes.some((c) => DROP_CLASSES.has(c));
        const drop =
          (DROP.has(name) && name !== 'nav') ||
          attribs.hidden !== undefined ||
          attribs['aria-hidden'] === 'true' ||
          (navigation && !keepNavigation);
        stack.push({ name, drop });
        if (name === 'title' && !inTitle && title === undefined) inTitle = true;
        if (drop) dropDepth++;
        if (dropDepth > 0) return;

        const h = /^h([1-6])$/.exec(name);
        if (h) {
          // Headings inside tables or lists are styling, not structure: treat them as text there.
          if (tables.length === 0 && items.length === 0) {
            flushParagraph();
            heading = { level: Number(h[1]), text: '' };
          } else addText(' ');
        } else if (name === 'pre') {
          if (pre === null && tables.length === 0 && items.length === 0) {
            flushParagraph();
            pre = '';
          }
          if (pre !== null) preDepth++;
        } else if (name === 'table') {
          if (tables.length === 0) flushParagraph();
          tables.push({ rows: [], row: null, cell: null });
        } else if (tables.length > 0 && name === 'tr') {
          const t = tables[tables.length - 1]!;
          t.row = [];
          t.rows.push(t.row);
        } else if (tables.length > 0 && (name === 'td' || name === 'th')) {
          const t = tables[tables.length - 1]!;
          if (!t.row) t.rows.push((t.row = []));
          t.cell = '';
        } else if ((name === 'ul' || name === 'ol') && tables.length === 0 && pre === null) {
          if (items.length === 0) {
            flushParagraph();
            listLines = [];
          } else flushItem(items.length - 1); // the parent item's text so far precedes its sub-list
          items.push(null);
        } else if (name === 'li' && items.length > 0 && tables.length === 0) {
          flushItem(items.length - 1);
        } else if (BLOCK.has(name) || name === 'li') {
          if (tables.length > 0 || items.length > 0 || heading || pre !== null) addText(name === 'br' && pre !== null ? '\n' : ' ');
          else flushParagraph();
        } else if (name === 'img' && attribs.alt) {
          addText(` ${attribs.alt} `);
        }
      },
      ontext(text) {
        if (inTitle) titleText += text;
        else if (dropDepth === 0) addText(text);
      },
      onclosetag(name) {
        // htmlparser2 reports implied closes too, so the stack stays balanced.
        const el = stack.pop();
        if (name === 'title' && inTitle) {
          inTitle = false;
          title = squash(titleText) || undefined;
        }
        if (el?.drop) {
          dropDepth--;
          return;
        }
        if (dropDepth > 0) return;
        const h = /^h([1-6])$/.exec(name);
        if (h && heading) {
          b.heading(heading.level, heading.text);
          heading = null;
        } else if (name === 'pre' && pre !== null) {
          if (--preDepth === 0) {
            b.block('code', pre);
            pre = null;
          }
        } else if (name === 'table' && tables.length > 0) {
          const t = tables.pop()!;
          const lines = t.rows.map((r) => r.map(squash)).filter((r) => r.some((c) => c)).map((r) => r.join(' | '));
          if (tables.length > 0) {
            // A nested table is flattened into the enclosing cell.
            const outer = tables[tables.length - 1]!;
            if (outer.cell !== null) outer.cell += ` ${lines.join(' ; ')} `;
          } else if (items.length > 0) {
            appendItem(` ${lines.join(' ; ')} `);
          } else {
            b.block('table', lines.join('\n'));
          }
        } else if (tables.length > 0 && (name === 'td' || name === 'th')) {
          const t = tables[tables.length - 1]!;
          if (t.row && t.cell !== null) t.row.push(t.cell);
          t.cell = null;
        } else if (tables.length > 0 && name === 'tr') {
          tables[tables.length - 1]!.row = null;
        } else if ((name === 'ul' || name === 'ol') && items.length > 0 && tables.length === 0 && pre === null) {
          flushItem(items.length - 1);
          items.pop();
          if (items.length === 0) {
            b.block('list', listLines.join('\n'));
            listLines = [];
          }
        } else if (name === 'li' && items.length > 0) {
          flushItem(items.length - 1);
        } else if (BLOCK.has(name) && tables.length === 0 && items.length === 0 && !heading && pre === null) {
          flushParagraph();
        }
      },
    },
    { decodeEntities: true, lowerCaseTags: true, recognizeSelfClosing: true },
  );
  parser.write(html);
  parser.end();
  flushParagraph();
  return b.build(mime, title ?? b.firstHeading);
}
