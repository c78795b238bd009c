// Browser test of the staff portal (/portal/) in Debian's chromium, against the running
// `lotse serve` of run.sh (real models): sign in, pass the KI-Kompass check, create a
// collection, upload a PDF made here, ask about it, and see the cited document.
// run.sh sets LOTSE_API, LOTSE_ARTIFACTS, LOTSE_PORTAL_USER and LOTSE_PORTAL_PASSWORD.
// Each check prints "ok" or "FAIL"; the exit code is the number of failures.

import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const API = process.env.LOTSE_API;
const USER = process.env.LOTSE_PORTAL_USER;
const ADMIN = process.env.LOTSE_PORTAL_ADMIN;
const PASSWORD = process.env.LOTSE_PORTAL_PASSWORD;
const OUT = process.env.LOTSE_ARTIFACTS || "test-artifacts/browser";
const ANSWER_TIMEOUT = 15 * 60 * 1000;
mkdirSync(OUT, { recursive: true });

// the right answers of the built-in check, in order
const CHECK = readFileSync(new URL("../../crates/portal/assets/ki-kompass-check.toml", import.meta.url), "utf8");
const CORRECT = [...CHECK.matchAll(/^correct\s*=\s*(\d+)/gm)].map((m) => Number(m[1]));

/** A one-page PDF with the lines in Helvetica (ASCII text). */
function pdf(lines) {
  let content = "BT /F1 12 Tf 72 720 Td 16 TL\n";
  for (const l of lines) content += `(${l}) Tj T*\n`;
  content += "ET";
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
  ];
  let out = "%PDF-1.4\n";
  const offsets = [];
  objects.forEach((o, i) => { offsets.push(out.length); out += `${i + 1} 0 obj\n${o}\nendobj\n`; });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const off of offsets) out += `${String(off).padStart(10, "0")} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, "latin1");
}

const results = [];
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - t0 });
    console.log(`ok    ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push({ name, ok: false, ms: Date.now() - t0, error: String(e && e.stack || e) });
    console.log(`FAIL  ${name}: ${e && e.message || e}`);
  }
}

async function axeSerious(page, label) {
  await page.addScriptTag({ content: AXE });
  const r = await page.evaluate(async () => {
    const res = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
      resultTypes: ["violations"],
    });
    return res.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target) }));
  });
  writeFileSync(join(OUT, `axe-${label}.json`), JSON.stringify(r, null, 2));
  return r.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.help}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
});
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "de-DE" });
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  let docHref = null;

  await check("portal: sign in", async () => {
    await page.goto(`${API}/portal/`, { waitUntil: "load" });
    await page.locator("#login-name").waitFor({ state: "visible", timeout: 30000 });
    assert.deepEqual(await axeSerious(page, "portal-login"), []);
    await page.fill("#login-name", USER);
    await page.fill("#login-password", "falsch-falsch-falsch");
    await page.getByRole("button", { name: "Anmelden" }).click();
    await page.locator(".error", { hasText: "falsch" }).waitFor({ timeout: 10000 });
    await page.fill("#login-password", PASSWORD);
    await page.getByRole("button", { name: "Anmelden" }).click();
    await page.locator("#kompass-h").waitFor({ timeout: 15000 });
  });

  await check("portal: pass the KI-Kompass check", async () => {
    assert.ok(CORRECT.length >= 3, "the check has questions");
    await page.locator("#frage-0-0").waitFor({ timeout: 10000 });
    assert.deepEqual(await axeSerious(page, "portal-kompass"), []);
    for (const [qi, c] of CORRECT.entries()) await page.check(`#frage-${qi}-${c}`);
    await page.getByRole("button", { name: "Antworten abgeben" }).click();
    await page.getByText(/^Bestanden:/).waitFor({ timeout: 10000 });
    await page.getByRole("button", { name: "Weiter zum KI-Chat" }).click();
    await page.locator("#chat-h").waitFor({ timeout: 10000 });
  });

  await check("portal: create a collection and upload a PDF", async () => {
    await page.fill("#sammlung-titel", "Dienstanweisungen");
    await page.getByRole("button", { name: "Sammlung anlegen" }).click();
    await page.getByText("wurde angelegt").waitFor({ timeout: 10000 });
    await page.locator("#ziel option").first().waitFor({ state: "attached", timeout: 10000 });
    await page.setInputFiles("#datei", {
      name: "dienstanweisung-hunde.pdf",
      mimeType: "application/pdf",
      buffer: pdf([
        "Dienstanweisung Hunde im Rathaus",
        "Paragraf 1 Hunde im Dienstgebaeude",
        "(1) Hunde duerfen nur mit schriftlicher Zustimmung der Amtsleitung in das Rathaus mitgebracht werden.",
        "(2) Die Zustimmung gilt fuer hoechstens sechs Monate und kann jederzeit widerrufen werden.",
      ]),
    });
    await page.getByRole("button", { name: "Hochladen" }).click();
    await page.getByText("wurde aufgenommen").waitFor({ timeout: 60000 });
  });

  await check("portal: ask about the PDF and see the cited document", async () => {
    await page.locator("label", { hasText: "Dienstanweisungen (1 Dokumente)" }).click();
    await page.uncheck("#quelle-website");
    await page.fill("#frage", "Darf ich meinen Hund mit ins Rathaus bringen?");
    await page.getByRole("button", { name: "Fragen", exact: true }).click();
    const answer = page.locator("article.answer");
    await answer.waitFor({ timeout: ANSWER_TIMEOUT });
    assert.match(await answer.locator(".label").innerText(), /KI-generiert/);
    const link = answer.locator('.sources a[href^="/portal/dokumente/"]').first();
    await link.waitFor({ timeout: 5000 });
    docHref = await link.getAttribute("href");
    await page.screenshot({ path: join(OUT, "portal-answer.png"), fullPage: true });
    assert.deepEqual(await axeSerious(page, "portal-chat"), []);
  });

  await check("portal: save a prompt with a placeholder and use it", async () => {
    await page.fill("#frage", "Fasse die Regeln zu {thema} in drei Sätzen zusammen.");
    await page.locator("summary", { hasText: "Frage als Vorlage speichern" }).click();
    await page.fill("#vorlage-titel", "Zusammenfassung");
    await page.getByRole("button", { name: "Vorlage speichern" }).click();
    await page.getByText("wurde gespeichert").waitFor({ timeout: 10000 });
    await page.fill("#frage", "");
    await page.locator("#vorlage option", { hasText: "Zusammenfassung" }).waitFor({ state: "attached", timeout: 10000 });
    await page.selectOption("#vorlage", { label: "Zusammenfassung" });
    await page.fill("#vorlage-thema", "Hunde im Rathaus");
    await page.getByRole("button", { name: "In die Frage übernehmen" }).click();
    assert.equal(await page.inputValue("#frage"), "Fasse die Regeln zu Hunde im Rathaus in drei Sätzen zusammen.");
    assert.deepEqual(await axeSerious(page, "portal-prompts"), []);
  });

  await check("portal: the cited document opens at its section", async () => {
    assert.ok(docHref, "a cited document");
    await page.goto(`${API}${docHref}`, { waitUntil: "load" });
    assert.match(await page.locator("main").innerText(), /Zustimmung der Amtsleitung/);
    await page.screenshot({ path: join(OUT, "portal-document.png") });
  });

  await check("portal: an admin sets a level and sees usage, the register and the exports", async () => {
    assert.ok(ADMIN, "LOTSE_PORTAL_ADMIN names the admin account");
    const actx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "de-DE" });
    const admin = await actx.newPage();
    admin.on("pageerror", (e) => errors.push(String(e)));
    await admin.goto(`${API}/portal/`, { waitUntil: "load" });
    await admin.locator("#login-name").waitFor({ state: "visible", timeout: 30000 });
    await admin.fill("#login-name", ADMIN);
    await admin.fill("#login-password", PASSWORD);
    await admin.getByRole("button", { name: "Anmelden" }).click();
    await admin.locator("#admin-h").waitFor({ timeout: 15000 });
    const level = admin.getByLabel("Stufe von Maria Muster");
    await level.waitFor({ timeout: 10000 });
    await level.selectOption("gold");
    await admin.getByText("Maria Muster: Stufe Gold.").waitFor({ timeout: 10000 });
    // the editor's question above is counted for the group
    await admin.locator("td", { hasText: "bauamt" }).first().waitFor({ timeout: 10000 });
    await admin.locator("td", { hasText: "Mitarbeiterportal" }).first().waitFor({ timeout: 10000 });
    // the review of the model's rewrites of legal texts (legal_texts = "review", the default)
    await admin.locator("#review-h").waitFor({ timeout: 10000 });
    assert.match(await admin.locator("#review-h").locator("..").innerText(), /erst, wenn Sie sie freigegeben haben/);
    // the widget test's click on the by-law queued the model's rewrite for review: wait for
    // it, open it, do not take the first block's wording, approve, and see what citizens get
    const BYLAW = process.env.LOTSE_BYLAW;
    let entry;
    for (const t0 = Date.now(); !entry; ) {
      const reviews = await admin.request.get(`${API}/portal/api/simplify/reviews`);
      assert.equal(reviews.status(), 200);
      entry = (await reviews.json()).find((r) => r.url.endsWith(BYLAW));
      if (!entry) {
        assert.ok(Date.now() - t0 < ANSWER_TIMEOUT, "the model's rewrite of the by-law was not made");
        await admin.waitForTimeout(2000);
      }
    }
    await admin.reload();
    const row = admin.locator("tr", { has: admin.locator(`a[href$="${BYLAW}"]`) });
    await row.getByRole("button").click();
    const first = admin.locator("textarea[id^=korrektur-]").first();
    await first.waitFor({ timeout: 10000 });
    assert.ok((await first.inputValue()).length > 0, "the model's wording is there to correct");
    assert.deepEqual(await axeSerious(admin, "portal-review"), []);
    await admin.locator("input[id^=verwerfen-]").first().check();
    assert.ok(await first.isDisabled(), "a block not taken cannot be edited");
    await admin.getByRole("button", { name: "Freigeben" }).click();
    await admin.getByText("freigegeben (ein Abschnitt korrigiert)").waitFor({ timeout: 10000 });
    const shown = await (await admin.request.get(`${API}/api/v1/simplify?url=${encodeURIComponent(entry.url)}`)).json();
    assert.equal(shown.review.status, "approved");
    assert.match(shown.review.message, /einen Abschnitt korrigiert/);
    assert.ok(shown.blocks.some((b) => b.correction === "rules"));
    const csv = await admin.request.get(`${API}/portal/api/register?format=csv`);
    assert.equal(csv.status(), 200);
    assert.match(csv.headers()["content-type"], /text\/csv/);
    assert.match(await csv.text(), /Bürger-Chat/);
    await admin.screenshot({ path: join(OUT, "portal-admin.png"), fullPage: true });
    assert.deepEqual(await axeSerious(admin, "portal-admin"), []);
    await actx.close();
  });

  await check("portal: no script errors", async () => {
    assert.deepEqual(errors, []);
  });
} finally {
  await browser.close();
}
writeFileSync(join(OUT, "portal-results.json"), JSON.stringify(results, null, 2));
const failed = results.filter((r) => !r.ok).length;
console.log(`portal: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed);
