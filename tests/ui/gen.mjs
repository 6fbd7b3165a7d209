// gen.mjs OUT MB - writes a Claude Code transcript of about MB megabytes
// to OUT: turns of a prompt, a Bash tool call, its result (2-3 kB) and an
// answer, as tests/fixtures/claude's transcripts hold them. For the UI's
// 250 MB session (tests/ui.sh). Lines are filled into templates (no
// JSON.stringify per line): the test should not load the machine longer
// than it must.
import fs from 'node:fs';

const [out, mb] = process.argv.slice(2);
const target = Number(mb) * 1024 * 1024;
const sid = '0badc0de-2500-4000-8000-000000000250';
const fd = fs.openSync(out, 'w');
const base = Date.parse('2026-03-01T09:00:00Z');
const filler = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor '.repeat(40);
const results = Array.from({ length: 7 }, (_, i) => JSON.stringify(filler.slice(0, 1800 + i * 150)).slice(1, -1));
const answer = filler.slice(0, 200);
const head = `"isSidechain":false,"userType":"external","cwd":"/home/user/big","sessionId":"${sid}","version":"2.1.39","gitBranch":"main"`;
// uuids differ in their first 12 hex digits (the importer's event ids)
const uuid = (k) => {
  const h = k.toString(16).padStart(12, '0');
  return `${h.slice(0, 8)}-${h.slice(8)}-4000-8000-000000000000`;
};
let written = 0;
let n = 0;
let t = 0;
let parent = null;
let buf = [];
const ts = () => new Date(base + (t += 700)).toISOString();
const emit = (l, u) => {
  buf.push(l);
  written += l.length; // ASCII only
  parent = u;
  if (buf.length >= 4000) {
    fs.writeSync(fd, buf.join(''));
    buf = [];
  }
};
const par = () => (parent ? `"${parent}"` : 'null');
while (written < target) {
  const k = n++;
  let u = uuid(4 * k);
  emit(`{"parentUuid":${par()},${head},"type":"user","message":{"role":"user","content":"Turn ${k}: run the check number ${k} and report"},"uuid":"${u}","timestamp":"${ts()}"}\n`, u);
  const tool = `toolu_${k.toString(36).padStart(20, '0')}`;
  u = uuid(4 * k + 1);
  emit(`{"parentUuid":${par()},${head},"message":{"model":"claude-sonnet-4-5","id":"msg_${k}a","type":"message","role":"assistant","content":[{"type":"tool_use","id":"${tool}","name":"Bash","input":{"command":"make check-${k % 97}","description":"Run check ${k}"}}],"stop_reason":null,"usage":{"input_tokens":3,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":20}},"requestId":"req_${k}a","type":"assistant","uuid":"${u}","timestamp":"${ts()}"}\n`, u);
  u = uuid(4 * k + 2);
  emit(`{"parentUuid":${par()},${head},"type":"user","message":{"role":"user","content":[{"tool_use_id":"${tool}","type":"tool_result","content":"check ${k}: ok\\n${results[k % 7]}","is_error":${k % 1000 === 999}}]},"uuid":"${u}","timestamp":"${ts()}"}\n`, u);
  u = uuid(4 * k + 3);
  emit(`{"parentUuid":${par()},${head},"message":{"model":"claude-sonnet-4-5","id":"msg_${k}b","type":"message","role":"assistant","content":[{"type":"text","text":"Check ${k} passed. ${answer}"}],"stop_reason":"end_turn","usage":{"input_tokens":5,"cache_creation_input_tokens":10,"cache_read_input_tokens":2100,"output_tokens":60}},"requestId":"req_${k}b","type":"assistant","uuid":"${u}","timestamp":"${ts()}"}\n`, u);
}
if (buf.length) fs.writeSync(fd, buf.join(''));
fs.closeSync(fd);
console.log(JSON.stringify({ session_id: sid, bytes: written, turns: n }));
