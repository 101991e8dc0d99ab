// Type-checks every JSON example of docs/protocol.md against the web client's protocol types
// (web-client/js/protocol.js): examples under "Client → server" must be a ClientMessage, those
// under "Server → client" a ServerMessage. Each example becomes one line of a generated
// TypeScript file (`const m12: ServerMessage = {...};`), so a missing field, an extra field, a
// misspelt enum value or an undocumented `type` is a compile error, reported here at the
// example's line in docs/protocol.md. It also checks the other way round: every `type` of the
// unions has an example. Run by scripts/check-js.sh; exits non-zero on any disagreement.

import { readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const docPath = join(root, 'docs', 'protocol.md');
const outDir = join(here, '.generated');

const lines = readFileSync(docPath, 'utf8').split('\n');

/** @type {{ direction: 'client' | 'server', line: number, text: string }[]} */
const examples = [];
let direction = null;
for (let i = 0; i < lines.length; i++) {
  const line = lines[i];
  if (/^## /.test(line)) {
    direction = /^## Client → server/.test(line) ? 'client' : /^## Server → client/.test(line) ? 'server' : null;
    continue;
  }
  if (line.trim() !== '```json') continue;
  const start = i + 1;
  let end = start;
  while (end < lines.length && lines[end].trim() !== '```') end++;
  if (end === lines.length) fail(`docs/protocol.md:${i + 1}: unterminated json block`);
  if (direction) examples.push({ direction, line: start + 1, text: lines.slice(start, end).join('\n') });
  i = end;
}

const problems = [];
const seen = { client: new Set(), server: new Set() };
const out = [
  "import type { ClientMessage, ServerMessage } from '../../../web-client/js/protocol.js';",
];
/** generated line number (1-based) → docs/protocol.md line */
const lineMap = new Map();
for (const [n, ex] of examples.entries()) {
  let value;
  try {
    value = JSON.parse(ex.text);
  } catch (err) {
    problems.push(`docs/protocol.md:${ex.line}: the example is not JSON: ${err.message}`);
    continue;
  }
  if (value && typeof value.type === 'string') seen[ex.direction].add(value.type);
  const typeName = ex.direction === 'client' ? 'ClientMessage' : 'ServerMessage';
  out.push(`export const m${n}: ${typeName} = ${JSON.stringify(value)};`);
  lineMap.set(out.length, ex.line);
}
// Every type of the unions has an example: the types left over must be `never`.
const list = (set) => [...set].map((t) => JSON.stringify(t)).join(' | ') || 'never';
out.push(`type MissingClient = Exclude<ClientMessage['type'], ${list(seen.client)}>;`);
out.push("export const everyClientTypeHasAnExample: [MissingClient] extends [never] ? true : MissingClient = true;");
lineMap.set(out.length, 'client');
out.push(`type MissingServer = Exclude<ServerMessage['type'], ${list(seen.server)}>;`);
out.push("export const everyServerTypeHasAnExample: [MissingServer] extends [never] ? true : MissingServer = true;");
lineMap.set(out.length, 'server');

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'examples.ts'), `${out.join('\n')}\n`);
writeFileSync(join(outDir, 'tsconfig.json'), JSON.stringify({
  compilerOptions: {
    target: 'es2022',
    module: 'esnext',
    moduleResolution: 'bundler',
    allowJs: true,
    checkJs: false,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    lib: ['es2023', 'dom'],
  },
  files: ['examples.ts'],
}, null, 2));

const tsc = join(here, 'node_modules', '.bin', 'tsc');
const run = spawnSync(tsc, ['-p', join(outDir, 'tsconfig.json'), '--pretty', 'false'], { encoding: 'utf8' });
const output = `${run.stdout || ''}${run.stderr || ''}`;
for (const raw of output.split('\n')) {
  const m = /examples\.ts\((\d+),\d+\): (error .*)$/.exec(raw);
  if (m) {
    const at = lineMap.get(Number(m[1]));
    if (at === 'client' || at === 'server') problems.push(`docs/protocol.md: a ${at === 'client' ? 'client → server' : 'server → client'} type of web-client/js/protocol.js has no example (the type named below): ${m[2]}`);
    else problems.push(`docs/protocol.md:${at ?? '?'}: ${m[2]}`);
  } else if (raw.trim() && !/^\s/.test(raw)) {
    problems.push(raw);
  } else if (raw.trim() && problems.length) {
    problems[problems.length - 1] += `\n  ${raw.trim()}`;
  }
}
if (run.status !== 0 && problems.length === 0) problems.push(`tsc failed (${run.status}): ${output}`);

if (problems.length) {
  console.error(problems.join('\n'));
  fail(`${problems.length} problem(s): docs/protocol.md and web-client/js/protocol.js disagree`);
}
rmSync(outDir, { recursive: true, force: true });
console.log(`protocol examples: ${examples.length} examples (${seen.client.size} client types, ${seen.server.size} server types) match ${relative(root, join(root, 'web-client/js/protocol.js'))}`);

function fail(text) {
  console.error(text);
  process.exit(1);
}
