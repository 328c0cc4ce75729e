// The browser half of web_ui.py: drives mwl's web page in headless Chromium
// (Debian's /usr/bin/chromium, or MWL_CHROMIUM) through playwright-core.
//
//   node web_ui.js create URL TOKEN DATE            -> JSON on stdout
//   node web_ui.js cancel URL TOKEN DATE SPSID PNG HL7ID  -> JSON on stdout
//
// create: the token dialog (the server has a tokens file) is answered; an
// empty form is refused in the browser with "required" next to each
// required field and no request sent; a 400 from the server is shown next
// to the field it names; then two items are created through
// the form (Study Instance UID left empty: the page makes a 2.25 UID), and
// both rows must show up with their names readable (three groups of a
// Japanese name, an umlaut); the first is edited through the form (read
// with GET, saved with one PUT) and its row shows the change and still the
// name's three groups. Prints {"items": [{sps, study, name}...]}.
// cancel: the row of SPSID is canceled with its button (the confirm
// dialog accepted), it must leave the list and the other row stay; the
// other row selected, findscu's logged query (calling AE FINDSCU, from the
// recent queries panel) is explained against it: a match; the status
// panel's HL7 line names message HL7ID (MSH-10) as the last one, AA; then
// a full-page screenshot into PNG. Prints {"rows": [...], "hl7": text}.
//
// Exit 0 done, 1 with a message on stderr. Every wait is bounded (the
// page's default timeout; the whole run by web_ui.py).
'use strict';

const path = require('path');
const { chromium } = require(path.join(__dirname, '..', 'node', 'node_modules', 'playwright-core'));

const WAIT_MS = 15000;

const ITEMS = [
  {
    PatientName: 'Yamada^Tarou=山田^太郎=やまだ^たろう', PatientID: 'WEBP1', AccessionNumber: 'WEBACC1',
    RequestedProcedureID: 'WEBRP1', RequestedProcedureDescription: 'CT chest', ScheduledProcedureStepID: 'WEBSPS1',
    Modality: 'CT', ScheduledStationAETitle: 'CT01', time: '09:30:00', ScheduledProcedureStepDescription: 'Chest plain',
    shown: ['Yamada, Tarou', '山田 太郎', 'やまだ たろう'],
  },
  {
    PatientName: 'Müller^Hans', PatientID: 'WEBP2', AccessionNumber: 'WEBACC2', RequestedProcedureID: 'WEBRP2',
    ScheduledProcedureStepID: 'WEBSPS2', Modality: 'CT', ScheduledStationAETitle: 'CT01', time: '10:15:00',
    shown: ['Müller, Hans'],
  },
];

function fail(msg) {
  throw new Error(msg);
}

async function open(url, token) {
  const browser = await chromium.launch({
    executablePath: process.env.MWL_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 60000,
    // No GPU in CI containers; the page needs none.
    args: ['--disable-gpu', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'en-GB' });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  // The browser logs every 4xx answer to fetch() as a console error; the
  // page expects some (401 before the token, 404 from /queries on a server
  // without a query log), so only other errors count.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) problems.push('console: ' + m.text());
  });
  // Anything but this server is a failure: the page must load nothing else.
  const origin = new URL(url).origin;
  page.on('request', (r) => { if (!r.url().startsWith(origin)) problems.push('external request: ' + r.url()); });
  page.on('dialog', (d) => d.accept());
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  // The tokens file makes the API answer 401: the page asks once.
  await page.locator('#token-dialog').waitFor({ state: 'visible' });
  await page.fill('#token-input', token);
  await page.click('#token-form button[type=submit]');
  await page.locator('#token-dialog').waitFor({ state: 'hidden' });
  return { browser, page, problems };
}

async function showDate(page, date) {
  await page.fill('#date', date);
  await page.dispatchEvent('#date', 'change');
  await page.locator('#worklist-heading').filter({ hasText: date }).waitFor();
}

async function rows(page) {
  return page.$$eval('#worklist tbody tr[data-sps]', (trs) => trs.map((tr) => ({
    sps: tr.dataset.sps, study: tr.dataset.study, text: tr.innerText,
  })));
}

async function create(url, token, date) {
  const { browser, page, problems } = await open(url, token);
  try {
    await showDate(page, date);
    // The browser's own check: nothing filled, every required field says so.
    await page.click('#new-item');
    await page.locator('#item-dialog').waitFor({ state: 'visible' });
    for (const k of ['ScheduledStationAETitle', 'Modality']) await page.fill('#f-' + k, '');
    let posted = 0;
    page.on('request', (r) => { if (r.method() === 'POST') posted++; });
    await page.click('#item-save');
    for (const k of ['PatientName', 'PatientID', 'RequestedProcedureID', 'ScheduledProcedureStepID', 'Modality',
      'ScheduledStationAETitle', 'ScheduledProcedureStepStartTime']) {
      const msg = await page.locator(`#f-${k} ~ .field-error`).innerText();
      if (msg !== 'required') fail(`empty form: ${k} says ${JSON.stringify(msg)}, expected "required"`);
    }
    if (posted) fail('an empty form was sent to the server');
    // A value import would refuse (two values) is refused next to its field.
    await page.fill('#f-PatientID', 'A\\B');
    await page.click('#item-save');
    const two = await page.locator('#f-PatientID ~ .field-error').innerText();
    if (!/one value/.test(two)) fail(`Patient ID "A\\B": ${JSON.stringify(two)}`);
    if (posted) fail('a form with a bad Patient ID was sent to the server');
    // The server's 400 goes next to the field its "attribute" names. The
    // browser already refuses what import refuses, so the answer is made
    // up here (once), in the shape the REST API gives it.
    await page.fill('#f-PatientID', 'X');
    await page.fill('#f-PatientName', 'A^B');
    for (const k of ['RequestedProcedureID', 'ScheduledProcedureStepID', 'Modality', 'ScheduledStationAETitle']) {
      await page.fill('#f-' + k, 'X');
    }
    await page.fill('#f-ScheduledProcedureStepStartTime', '08:00:00');
    await page.route('**/mwlitems', (route) => route.fulfill({
      status: 400, contentType: 'application/json',
      body: JSON.stringify({ error: 'SPS item 1: missing type 1 key ScheduledStationAETitle (0040,0001)',
        attribute: 'ScheduledStationAETitle', status: 400 }),
    }), { times: 1 });
    await page.click('#item-save');
    await page.locator('#f-ScheduledStationAETitle ~ .field-error').filter({ hasText: 'missing type 1 key' }).waitFor();
    await page.click('#item-cancel');

    for (const it of ITEMS) {
      await page.click('#new-item');
      await page.locator('#item-dialog').waitFor({ state: 'visible' });
      for (const k of ['PatientName', 'PatientID', 'AccessionNumber', 'RequestedProcedureID',
        'RequestedProcedureDescription', 'ScheduledProcedureStepID', 'Modality', 'ScheduledStationAETitle',
        'ScheduledProcedureStepDescription']) {
        await page.fill('#f-' + k, it[k] || '');
      }
      await page.fill('#f-ScheduledProcedureStepStartDate', date);
      await page.fill('#f-ScheduledProcedureStepStartTime', it.time);
      await page.fill('#f-StudyInstanceUID', '');
      await page.click('#item-save');
      const closed = page.locator('#item-dialog').waitFor({ state: 'hidden' }).then(() => null);
      const refused = page.locator('#form-error').filter({ hasText: /./ }).waitFor().then(() => 'refused');
      if (await Promise.race([closed, refused]) === 'refused') {
        fail(`creating ${it.ScheduledProcedureStepID}: ${await page.locator('#form-error').innerText()}`);
      }
      await page.locator(`#worklist tbody tr[data-sps="${it.ScheduledProcedureStepID}"]`).waitFor();
    }
    const got = await rows(page);
    const out = [];
    for (const it of ITEMS) {
      const row = got.find((r) => r.sps === it.ScheduledProcedureStepID);
      if (!row) fail(`no row for ${it.ScheduledProcedureStepID}: ${JSON.stringify(got)}`);
      for (const s of it.shown) if (!row.text.includes(s)) fail(`row ${row.sps} does not show ${s}: ${row.text}`);
      if (!/^2\.25\.[1-9][0-9]{0,38}$/.test(row.study)) fail(`row ${row.sps}: Study UID ${row.study} is not 2.25.<n>`);
      out.push({ sps: row.sps, study: row.study, name: it.PatientName });
    }
    // Edit through the form: the page reads the item (GET /mwlitems/{study}/{sps}),
    // the form comes back filled, and saving PUTs it; the row shows the change
    // and keeps what the form does not show (the name's three groups).
    const first = ITEMS[0];
    let puts = 0;
    page.on('request', (r) => { if (r.method() === 'PUT') puts++; });
    await page.locator(`#worklist tbody tr[data-sps="${first.ScheduledProcedureStepID}"] button.edit`).click();
    await page.locator('#item-dialog').waitFor({ state: 'visible' });
    const shownId = await page.inputValue('#f-PatientID');
    if (shownId !== first.PatientID) fail(`edit form: Patient ID ${JSON.stringify(shownId)}, expected ${first.PatientID}`);
    await page.fill('#f-ScheduledProcedureStepDescription', first.ScheduledProcedureStepDescription + ' (edited)');
    await page.click('#item-save');
    await page.locator('#item-dialog').waitFor({ state: 'hidden' });
    const edited = page.locator(`#worklist tbody tr[data-sps="${first.ScheduledProcedureStepID}"]`);
    await edited.filter({ hasText: '(edited)' }).waitFor();
    const editedText = await edited.innerText();
    for (const s of first.shown) if (!editedText.includes(s)) fail(`edited row does not show ${s}: ${editedText}`);
    if (puts !== 1) fail(`saving the edit made ${puts} PUT request(s), expected 1`);
    if (problems.length) fail(problems.join('\n'));
    return { items: out };
  } finally {
    await browser.close();
  }
}

async function cancel(url, token, date, sps, png, hl7Id) {
  const { browser, page, problems } = await open(url, token);
  try {
    await showDate(page, date);
    const row = page.locator(`#worklist tbody tr[data-sps="${sps}"]`);
    await row.waitFor();
    const before = await rows(page);
    await row.locator('button.cancel').click();
    await row.waitFor({ state: 'detached' });
    const after = await rows(page);
    const others = before.filter((r) => r.sps !== sps).map((r) => r.sps).sort();
    if (JSON.stringify(after.map((r) => r.sps).sort()) !== JSON.stringify(others)) {
      fail(`after canceling ${sps} the list holds ${JSON.stringify(after.map((r) => r.sps))}, expected ${JSON.stringify(others)}`);
    }
    // The recent queries of findscu's calling AE (web_ui.py ran one for
    // CT01 and the date), explained against the row that stays: a match.
    const keep = others[0];
    await page.locator(`#worklist tbody tr[data-sps="${keep}"] button.select`).click();
    await page.fill('#queries-ae', 'FINDSCU');
    await page.click('#queries-form button[type=submit]');
    const explainButton = page.locator('#queries-list li button.explain').first();
    await explainButton.waitFor();
    const logged = await page.locator('#queries-list li').first().innerText();
    if (!/CT01/.test(logged)) fail(`the newest FINDSCU query does not show its keys: ${logged}`);
    await explainButton.click();
    const verdict = page.locator('#explain-result p').filter({ hasText: `SPS ${keep}:` });
    await verdict.waitFor();
    const text = await verdict.innerText();
    if (!/: match/.test(text)) fail(`explain of the findscu query against ${keep}: ${text}`);
    // Let the status panel fill before the picture.
    await page.locator('#status-list dt').first().waitFor();
    // web_ui.py sent one ORM through the HL7 feed: its MSH-10, accepted.
    const hl7 = page.locator('#status-hl7');
    await hl7.waitFor();
    const hl7Text = await hl7.innerText();
    if (!hl7Text.startsWith('HL7 feed: last message') || !hl7Text.includes(hl7Id) || !hl7Text.includes('(AA)')) {
      fail(`the status panel's HL7 line does not show message ${hl7Id} (AA): ${hl7Text}`);
    }
    await page.screenshot({ path: png, fullPage: true });
    if (problems.length) fail(problems.join('\n'));
    return { rows: after, hl7: hl7Text };
  } finally {
    await browser.close();
  }
}

async function main() {
  const [cmd, url, token, date, ...rest] = process.argv.slice(2);
  let result;
  if (cmd === 'create' && rest.length === 0) result = await create(url, token, date);
  else if (cmd === 'cancel' && rest.length === 3) result = await cancel(url, token, date, rest[0], rest[1], rest[2]);
  else fail('usage: web_ui.js create URL TOKEN DATE | cancel URL TOKEN DATE SPSID PNG HL7ID');
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
