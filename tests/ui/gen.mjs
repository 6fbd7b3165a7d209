// gen.mjs OUT MB - writes a Claude Code transcript of about MB megabytes
// to OUT: turns of a prompt, a Bash tool call, its result (1-2 kB) and an
// answer, as tests/fixtures/claude's transcripts hold them. For the UI's
// 250 MB session (tests/ui.sh).
import fs from 'node:fs';

const [out, mb] = process.argv.slice(2);
const target = Number(mb) * 1024 * 1024;
const sid = '0badc0de-2500-4000-8000-000000000250';
const fd = fs.openSync(out, 'w');
const base = Date.parse('2026-03-01T09:00:00Z');
const filler = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor '.repeat(40);
let written = 0, n = 0, t = 0, parent = null, buf = [];
const uuid = (k) => `${k.toString(16).padStart(12, '0').slice(0, 8)}-${k.toString(16).padStart(12, '0').slice(8)}-4000-8000-000000000000`;
const common = () => ({ parentUuid: parent, isSidechain: false, userType: 'external', cwd: '/home/user/big',
  sessionId: sid, version: '2.1.39', gitBranch: 'main' });
const emit = (o) => {
  const l = JSON.stringify(o) + '\n';
  buf.push(l);
  written += Buffer.byteLength(l);
  if (buf.length >= 2000) { fs.writeSync(fd, buf.join('')); buf = []; }
  parent = o.uuid;
};
const ts = () => new Date(base + (t += 700)).toISOString();
while (written < target) {
  const k = n++;
  emit({ ...common(), type: 'user', message: { role: 'user', content: `Turn ${k}: run the check number ${k} and report` },
    uuid: uuid(4 * k), timestamp: ts() });
  const tool = `toolu_${k.toString(36).padStart(20, '0')}`;
  emit({ ...common(), message: { model: 'claude-sonnet-4-5', id: `msg_${k}a`, type: 'message', role: 'assistant',
    content: [{ type: 'tool_use', id: tool, name: 'Bash', input: { command: `make check-${k % 97}`, description: `Run check ${k}` } }],
    stop_reason: null, usage: { input_tokens: 3, cache_creation_input_tokens: 100, cache_read_input_tokens: 2000, output_tokens: 20 } },
  requestId: `req_${k}a`, type: 'assistant', uuid: uuid(4 * k + 1), timestamp: ts() });
  emit({ ...common(), type: 'user', message: { role: 'user', content: [{ tool_use_id: tool, type: 'tool_result',
    content: `check ${k}: ok\n${filler.slice(0, 1800 + (k % 7) * 150)}`, is_error: k % 1000 === 999 }] },
  uuid: uuid(4 * k + 2), timestamp: ts() });
  emit({ ...common(), message: { model: 'claude-sonnet-4-5', id: `msg_${k}b`, type: 'message', role: 'assistant',
    content: [{ type: 'text', text: `Check ${k} passed. ${filler.slice(0, 200)}` }], stop_reason: 'end_turn',
    usage: { input_tokens: 5, cache_creation_input_tokens: 10, cache_read_input_tokens: 2100, output_tokens: 60 } },
  requestId: `req_${k}b`, type: 'assistant', uuid: uuid(4 * k + 3), timestamp: ts() });
}
if (buf.length) fs.writeSync(fd, buf.join(''));
fs.closeSync(fd);
console.log(JSON.stringify({ session_id: sid, bytes: written, turns: n }));
