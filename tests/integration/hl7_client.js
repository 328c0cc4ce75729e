#!/usr/bin/env node
/* An independent HL7 v2 MLLP client for tests/integration/hl7_node.py:
 * node-hl7-client (installed in tests/node by `npm ci`) sends two orders to
 * HOST PORT on one connection and waits for each acknowledgement.
 *
 *   node hl7_client.js HOST PORT FILE
 *
 * 1. the message in FILE (segments ended by LF or CR, UTF-8), parsed by the
 *    library (new Message({text})) and sent as the library writes it again;
 * 2. an OMI^O23 built with the library's builder: its own MSH (MSH-7 now,
 *    version 2.7, MSH-10 NODE00002), a non-ASCII name and a '|' in OBR-44.2
 *    that the library escapes as \F\.
 * Prints one JSON object on stdout:
 *   {"sent": [text, text], "acks": [{"text", "msa1", "msa2"}, ...]}
 * Exit 0 when both acknowledgements arrived (whatever they say: the test
 * judges them), 2 on a connection error, 3 when the exchange took longer
 * than the overall limit. */
'use strict';

const fs = require('fs');
const path = require('path');

const here = path.join(__dirname, '..', 'node');
const { Client, Message } = require(require.resolve('node-hl7-client', { paths: [here] }));

const [host, portText, file] = process.argv.slice(2);
if (!host || !portText || !file) {
  process.stderr.write('usage: hl7_client.js HOST PORT FILE\n');
  process.exit(64);
}

const LIMIT_MS = 60000;
const result = { sent: [], acks: [], errors: [] };

function built() {
  const m = new Message({
    messageHeader: { msh_9_1: 'OMI', msh_9_2: 'O23', msh_9_3: 'OMI_O23', msh_10: 'NODE00002', msh_11_1: 'P' }
  });
  m.set('MSH.3', 'NODEBUILDER');
  m.set('MSH.4', 'NODEFAC');
  m.set('MSH.18', 'UNICODE UTF-8');
  const pid = m.addSegment('PID');
  pid.set('3.1', 'NODEP2');
  pid.set('3.4', 'HOSP');
  pid.set('5.1', 'BÜILT');
  pid.set('5.2', 'NODE');
  pid.set('7', '19900101');
  pid.set('8', 'M');
  const orc = m.addSegment('ORC');
  orc.set('1', 'NW');
  orc.set('2', 'PLN2');
  orc.set('5', 'SC');
  const tq1 = m.addSegment('TQ1');
  tq1.set('1', '1');
  tq1.set('7', '20270323120000');
  const obr = m.addSegment('OBR');
  obr.set('1', '1');
  obr.set('2', 'PLN2');
  obr.set('4.1', 'USNECK');
  obr.set('4.2', 'US neck');
  obr.set('4.3', 'L');
  obr.set('24', 'US');
  obr.set('44.1', 'USNECK');
  obr.set('44.2', 'US neck | thyroid');
  obr.set('44.3', 'L');
  const ipc = m.addSegment('IPC');
  ipc.set('1.1', 'ACCNODE2');
  ipc.set('2.1', 'RPNODE2');
  ipc.set('3.1', '1.2.826.0.1.3680043.9.7777.902.2');
  ipc.set('4.1', 'SPSNODE2');
  ipc.set('5.1', 'US');
  ipc.set('9', 'US02');
  return m;
}

const text = fs.readFileSync(file, 'utf8').replace(/\r\n|\n/g, '\r').replace(/\r+$/, '');
const messages = [new Message({ text }), built()];

const client = new Client({ host, ipv4: true, connectionTimeout: 10000 });
let waiting = null; /* resolves with the next acknowledgement */
const conn = client.createConnection(
  { port: parseInt(portText, 10), maxConnectionAttempts: 3, maxAttempts: 2 },
  async (res) => {
    const msg = res.getMessage();
    const ack = { text: msg.toString(), msa1: msg.get('MSA.1').toString(), msa2: msg.get('MSA.2').toString() };
    result.acks.push(ack);
    if (waiting) {
      const w = waiting;
      waiting = null;
      w(ack);
    }
  });
conn.on('client.error', (err) => result.errors.push(String(err && err.message ? err.message : err)));

function finish(code) {
  process.stdout.write(JSON.stringify(result) + '\n');
  try {
    conn.close();
    client.closeAll();
  } catch (e) { /* closing is best effort; we exit anyway */ }
  process.exit(code);
}

const timer = setTimeout(() => {
  result.errors.push('no end within ' + LIMIT_MS + ' ms');
  finish(3);
}, LIMIT_MS);

(async () => {
  try {
    for (const m of messages) {
      const acked = new Promise((resolve) => { waiting = resolve; });
      result.sent.push(m.toString());
      await conn.sendMessage(m);
      await acked;
    }
    clearTimeout(timer);
    finish(0);
  } catch (e) {
    result.errors.push(String(e && e.message ? e.message : e));
    clearTimeout(timer);
    finish(2);
  }
})();
