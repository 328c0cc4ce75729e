#!/usr/bin/env node
/* A Node.js worklist client for tests/integration/dcmjs_interop.py: one
 * association to HOST PORT with dcmjs-dimse (installed in tests/node by
 * `npm ci`), a C-ECHO, then the library's stock worklist query,
 * CFindRequest.createWorklistFindRequest({}) -- which sends Pregnancy Status
 * (0010,21C0) as the US value 0 where it means "no value".
 *
 *   node dcmjs_worklist.js HOST PORT CALLED_AET QUERY_FILE
 *
 * Writes the identifier it sends to QUERY_FILE (Implicit VR Little Endian,
 * no meta header), so that `mwl find --query QUERY_FILE` can send the very
 * same one, and prints one JSON object on stdout:
 *   {"echo": status, "pending": [status...], "final": status, "items": [data set...]}
 * with each response data set as dcmjs-dimse naturalizes it. Exit 0 when
 * the association ran its course, 2 on a network error, 3 when it took
 * longer than the overall limit; the test judges the content. */
'use strict';

const fs = require('fs');
const path = require('path');

const here = path.join(__dirname, '..', 'node');
const dimse = require(require.resolve('dcmjs-dimse', { paths: [here] }));
const { Client } = dimse;
const { CEchoRequest, CFindRequest } = dimse.requests;
const { Status } = dimse.constants;
dimse.log.setLevel('silent'); /* it logs on stdout, where our JSON goes */

const [host, portText, calledAet, queryFile] = process.argv.slice(2);
if (!host || !portText || !calledAet || !queryFile) {
  process.stderr.write('usage: dcmjs_worklist.js HOST PORT CALLED_AET QUERY_FILE\n');
  process.exit(64);
}

const LIMIT_MS = 60000; /* the whole exchange; every wait below is bounded by it */
const result = { echo: null, pending: [], final: null, items: [], events: [] };

const echo = new CEchoRequest();
echo.on('response', (response) => {
  result.echo = response.getStatus();
});

const find = CFindRequest.createWorklistFindRequest({});
fs.writeFileSync(queryFile, find.getDataset().getDenaturalizedDataset());
find.on('response', (response) => {
  const status = response.getStatus();
  if (status === Status.Pending || status === 0xff01) {
    result.pending.push(status);
    if (response.hasDataset()) {
      result.items.push(response.getDataset().getElements());
    }
  } else {
    result.final = status;
  }
});

const timer = setTimeout(() => {
  process.stderr.write(`dcmjs_worklist: no end after ${LIMIT_MS} ms\n`);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(3);
}, LIMIT_MS);

const client = new Client();
client.addRequest(echo);
client.addRequest(find);
for (const ev of ['associationAccepted', 'associationRejected', 'associationReleased']) {
  client.on(ev, () => result.events.push(ev));
}
client.on('networkError', (e) => {
  const what = e && e.message ? e.message : String(e);
  if (result.events.includes('associationReleased')) {
    /* dcmjs-dimse 0.3.3 sends an A-RELEASE-RQ each time its queue runs
     * empty, i.e. after every Pending response it handles once the last
     * request went out; after the A-RELEASE-RP it has ended the socket, and
     * the next one fails with "write after end". Its own quirk, after the
     * association is over: noted, not fatal. */
    result.late_errors = (result.late_errors || []).concat([what]);
    return;
  }
  clearTimeout(timer);
  process.stderr.write(`dcmjs_worklist: network error: ${what}\n`);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(2);
});
client.on('closed', () => {
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
});
client.send(host, Number(portText), 'DCMJS', calledAet, {
  connectTimeout: 10000,
  associationTimeout: 10000,
  pduTimeout: 30000,
});
