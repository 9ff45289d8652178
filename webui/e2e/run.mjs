// End-to-end test of the dashboard in Debian's Chromium (playwright-core), against a real admin on the real
// local stack with services launched. Started by tests/webui/test_dashboard_e2e.py, which starts the stack and
// admin, creates the users and writes the files named by the E2E_* variables below.
//
// The steps run in order and share one browser (each needs the one before); each saves a screenshot under
// E2E_OUT, and axe-core checks every page it opens for serious or critical violations.
import { strict as assert } from "node:assert";
import { mkdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { after, before, test } from "node:test";
import AxeBuilder from "@axe-core/playwright";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (tests/webui/test_dashboard_e2e.py sets it)`);
  return value;
};
const URL = env("EASEL_URL");
const OUT = env("E2E_OUT");
const DEV = { email: env("E2E_DEV_EMAIL"), password: env("E2E_PASSWORD") };
const OTHER = { email: env("E2E_OTHER_EMAIL"), password: env("E2E_PASSWORD") };
const ROOT = { email: env("E2E_ROOT_EMAIL"), password: env("E2E_ROOT_PASSWORD") };
const APP = env("E2E_APP");
const MODEL = `mlp-${APP}`; // model names are unique across users
const NEW_USER = `new-${APP}@easel.test`;
const TRAIN_WAIT_MS = Number(process.env.E2E_TRAIN_WAIT_S ?? 420) * 1000;
const CHROMIUM = process.env.E2E_CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"];

mkdirSync(OUT, { recursive: true });
let browser;
let page;
const a11y = []; // page name -> serious/critical violations

before(async () => {
  // Playwright adds --headless and a fresh --user-data-dir (a temporary profile) itself.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(30_000);
  page = await context.newPage();
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") console.error(`console: ${message.text()}`);
  });
});

after(async () => {
  await browser?.close();
});

// The steps depend on each other: after a failure the rest are skipped rather than failing on its leftovers.
let failed = false;
function step(name, body) {
  test(name, async (t) => {
    if (failed) return t.skip("an earlier step failed");
    try {
      await body();
    } catch (error) {
      failed = true;
      await shot(`failed-${name.replace(/[^a-z0-9]+/gi, "-").slice(0, 40)}`).catch(() => {});
      throw error;
    }
  });
}

async function shot(name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}

async function axe(name) {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  a11y.push({ name, bad: bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join("; ")}`) });
  assert.deepEqual(bad.map((v) => v.id), [], `${name}: axe found\n${a11y.at(-1).bad.join("\n")}`);
}

async function login(who) {
  await page.goto(`${URL}/`);
  await page.waitForURL("**/ui/login");
  await page.getByLabel("E-mail").fill(who.email);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Overview" }).waitFor();
}

async function logout() {
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("button", { name: "Log in" }).waitFor();
}

async function go(path, heading) {
  await page.goto(`${URL}/ui${path}`);
  await page.getByRole("heading", { name: heading, exact: false }).first().waitFor();
}

async function token() {
  return page.evaluate(() => sessionStorage.getItem("easel.token"));
}

step("log in, and see who I am", async () => {
  await page.goto(`${URL}/`);
  await page.waitForURL("**/ui/login");
  await axe("login");
  await page.getByLabel("E-mail").fill(DEV.email);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("alert").filter({ hasText: "bad_credentials" }).waitFor();
  await shot("01-login-refused");
  await login(DEV);
  await assert.doesNotReject(page.getByText(DEV.email).first().waitFor());
  await axe("overview");
  // a reload keeps the session (the token is in this tab's sessionStorage)
  await page.reload();
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  await shot("02-overview");
});

step("upload digits with a progress bar; a bad upload shows the API's message", async () => {
  await go("/datasets", "Datasets");
  await page.getByText("No datasets yet").waitFor();
  await axe("datasets (empty)");
  // a slow uplink (Chromium's network emulation) so that the progress bar can be seen moving
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions",
                 { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 96 * 1024 });
  for (const [name, file] of [["digits-train", env("E2E_TRAIN")], ["digits-val", env("E2E_VAL")]]) {
    await page.getByLabel("Name").fill(name);
    await page.getByLabel(/^File/).setInputFiles(file);
    await page.getByRole("button", { name: "Upload" }).click();
    if (name === "digits-train") {
      const bar = page.getByRole("progressbar");
      await page.waitForFunction(() => {
        const p = document.querySelector("progress");
        return p !== null && p.value > 0 && p.value < p.max;
      });
      assert.match(await bar.evaluate((p) => p.closest("label").textContent), /^Uploading [\d.]+ KiB of [\d.]+ KiB/);
    }
    await page.getByText(`Uploaded ${name}:`).waitFor();
  }
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await page.getByRole("cell", { name: "digits-val", exact: true }).waitFor();
  // the bad file, as admin words it: ask the API directly for the same file, then compare
  const bad = env("E2E_BAD");
  const direct = await page.request.post(`${URL}/datasets`, {
    headers: { Authorization: `Bearer ${await token()}` },
    multipart: { name: "broken", task: "IMAGE_CLASSIFICATION",
                 file: { name: basename(bad), mimeType: "application/octet-stream", buffer: readFileSync(bad) } },
  });
  const envelope = await direct.json();
  assert.equal(direct.status(), 422);
  await page.getByLabel("Name").fill("broken");
  await page.getByLabel(/^File/).setInputFiles(bad);
  await page.getByRole("button", { name: "Upload" }).click();
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert.equal(await alert.innerText(), `${envelope.error}: ${envelope.detail}`);
  await axe("datasets");
  await shot("03-datasets");
});

step("see the schema inferred on upload, and confirm it", async () => {
  await page.getByRole("button", { name: "Schema of digits-train" }).click();
  const schema = page.getByRole("region", { name: "Schema of digits-train" });
  await schema.getByTestId("schema-status").filter({ hasText: "inferred" }).waitFor();
  assert.match(await schema.locator("dl").innerText(), /IMAGE_CLASSIFICATION[\s\S]*\[1, 8, 8\]/);
  await schema.getByRole("button", { name: "Confirm as shown" }).click();
  await schema.getByTestId("schema-status").filter({ hasText: "confirmed" }).waitFor();
  await page.getByRole("button", { name: "Schema of digits-train" }).filter({ hasText: "confirmed" }).waitFor();
  await axe("dataset schema");
  await shot("03b-dataset-schema");
});

step("upload a model template and see the checker's verdict", async () => {
  await go("/models", "Models");
  await page.getByRole("cell", { name: "SlicedMLP", exact: true }).waitFor(); // built-ins are listed
  await page.getByLabel("Name", { exact: true }).fill(MODEL);
  await page.getByLabel("Template (.py)").setInputFiles(env("E2E_TEMPLATE"));
  await page.getByRole("button", { name: "Upload and check" }).click();
  await page.getByText("The checker's verdict: accepted.").waitFor({ timeout: 90_000 });
  await page.getByLabel("Name", { exact: true }).fill("not-python");
  await page.getByLabel("Template (.py)").setInputFiles(env("E2E_BAD_TEMPLATE"));
  await page.getByRole("button", { name: "Upload and check" }).click();
  await page.getByText("The checker's verdict: rejected.").waitFor({ timeout: 90_000 });
  assert.match(await page.getByRole("alert").innerText(), /^invalid_template: /);
  await axe("models");
  await shot("04-models");
});

step("start a 2-trial job and watch the trial table change without reloading", async () => {
  await go("/train_jobs", "Train jobs");
  await axe("train jobs");
  const form = page.getByRole("form", { name: "Start a train job" });
  await form.getByRole("button", { name: "Start training" }).click(); // empty: the form names what is missing
  await form.getByText("choose a training dataset").waitFor();
  await form.getByLabel("App name").fill(APP);
  await form.getByLabel("Training dataset").selectOption({ label: "digits-train" });
  await form.getByLabel("Validation dataset").selectOption({ label: "digits-val" });
  await form.getByLabel(MODEL).check();
  await form.getByLabel("Trials per model").fill("2");
  await form.getByLabel("Workers per model").fill("2");
  await form.getByRole("button", { name: "Start training" }).click();
  await page.waitForURL(`**/ui/train_jobs/${APP}/1`);
  await page.evaluate(() => { window.__sameDocument = true; });
  const rows = page.locator("table.trials tbody tr");
  await rows.first().waitFor({ timeout: 120_000 });
  await shot("05-train-job-running");
  await axe("train job (running)");
  // both trials finish, and the job: seen live, in the same document
  await page.locator('table.trials tbody tr[data-status="COMPLETED"]').nth(1).waitFor({ timeout: TRAIN_WAIT_MS });
  const finished = page.getByText(/^Finished after \d+ live updates?/);
  await finished.waitFor({ timeout: 60_000 });
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was reloaded");
  const updates = Number((await finished.innerText()).match(/\d+/)[0]);
  assert.ok(updates >= 3, `only ${updates} live updates: the table did not change in place`);
  assert.equal(await rows.count(), 2);
  await page.getByRole("figure", { name: "Best score so far, by trial" }).waitFor();
  await page.getByRole("figure", { name: /per epoch$/ }).waitFor();
});

step("open the profile chart and compare trials", async () => {
  await page.getByRole("button", { name: "Show the profile of trial 1" }).click();
  await page.getByRole("figure", { name: /^Trial 1 .*accuracy and batch time per slice rate$/ }).waitFor();
  const rates = await page.getByRole("table", { name: "Profile of trial 1" }).locator("tbody tr").count();
  assert.ok(rates >= 2, `the profile lists ${rates} slice rates`);
  await page.getByLabel("Compare trial 1").check();
  await page.getByLabel("Compare trial 2").check();
  await page.getByRole("heading", { name: "Comparing 2 trials" }).waitFor();
  await page.getByRole("figure", { name: "Accuracy by slice rate, compared" }).waitFor();
  await axe("train job (finished)");
  await shot("06-train-job-finished");
});

step("deploy, and watch the serving panel", async () => {
  await page.getByLabel("Inference workers").fill("2");
  await page.getByRole("button", { name: "Deploy the best trial" }).click();
  await page.waitForURL(`**/ui/inference_jobs/${APP}/1`);
  await page.locator("h1 .badge", { hasText: "RUNNING" }).waitFor({ timeout: 180_000 });
  await page.getByRole("region", { name: "Serving now" }).waitFor();
  await axe("inference job");
});

step("predict from the try-it page and see per-instance status", async () => {
  await go(`/try/${APP}/1`, "Try it");
  await page.getByText(/workers ready/).waitFor();
  const canvas = page.getByRole("img", { name: /Drawing area/ });
  const box = await canvas.boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.15);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.85, { steps: 12 });
  await page.mouse.up();
  await page.getByLabel(/^Deadline/).focus();
  await page.keyboard.press("End"); // the slider, by keyboard: its longest deadline (5 s)
  await page.getByLabel("Copies of the image in one request").fill("8");
  await page.getByRole("button", { name: "Predict" }).click();
  const answer = page.getByRole("region", { name: "Answer" });
  await answer.waitFor({ timeout: 60_000 });
  const statuses = await answer.locator("tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.status));
  assert.equal(statuses.length, 8);
  assert.ok(statuses.every((s) => s === "served" || s === "dropped"), statuses.join(","));
  assert.ok(statuses.includes("served"), "with a 5 s deadline some instance is served");
  await answer.getByTestId("label").waitFor();
  await axe("try it");
  await shot("07-try-it");
});

step("the serving panel counts the answers; stop", async () => {
  await go(`/inference_jobs/${APP}/1`, "Serving");
  const served = page.locator(".stat", { hasText: "Served / dropped (all time)" }).locator(".stat-value");
  await assert.doesNotReject(async () => {
    for (let i = 0; i < 30; i++) {
      const text = await served.innerText();
      const n = Number(text.split("/")[0]);
      if (n > 0) return;
      await page.waitForTimeout(1000);
    }
    throw new Error("the metrics never showed a served instance");
  });
  await page.getByRole("figure", { name: "Plan mix: mini-batches run per slice rate" }).waitFor();
  // the panel keeps itself current: a throughput point needs two successive snapshots
  await page.getByRole("figure", { name: "Requests, served and dropped instances per second" }).waitFor();
  await shot("08-serving");
  await page.getByRole("button", { name: "Stop serving" }).click();
  await page.locator("h1 .badge", { hasText: "STOPPED" }).waitFor({ timeout: 120_000 });
});

step("a train job without models gets the fitting templates, and shows why", async () => {
  await go("/train_jobs", "Train jobs");
  const form = page.getByRole("form", { name: "Start a train job" });
  await form.getByLabel("App name").fill(`${APP}-auto`);
  await form.getByLabel("Training dataset").selectOption({ label: "digits-train" });
  await form.getByLabel("Validation dataset").selectOption({ label: "digits-val" });
  await form.getByText(/^None ticked: Easel trains every template/).waitFor();
  await form.getByLabel("Trials per model").fill("1");
  await form.getByLabel("Workers per model").fill("1");
  await form.getByRole("button", { name: "Start training" }).click();
  await page.waitForURL(`**/ui/train_jobs/${APP}-auto/1`);
  const candidates = page.getByRole("region", { name: "Candidate models" });
  const chosen = candidates.getByRole("table", { name: /^Chosen \(\d+\)$/ });
  await chosen.getByRole("row", { name: /SlicedMLP declares it fits IMAGE_CLASSIFICATION/ }).waitFor();
  await candidates.getByText(/input shape \[1, 8, 8\], \d+ classes \(schema confirmed\)/).waitFor();
  await candidates.locator("summary").click(); // a <details>: why the others were not chosen
  await candidates.getByRole("row", { name: /SlicedMLP-tabular a TABULAR_CLASSIFICATION template/ }).waitFor();
  await axe("train job (declarative)");
  await shot("08b-declarative-job");
  await page.getByRole("button", { name: "Stop job" }).click(); // nothing to learn from training it here
  await page.locator("h1 .badge", { hasText: "STOPPED" }).waitFor({ timeout: 120_000 });
});

step("a second user sees none of the first user's objects", async () => {
  await logout();
  await login(OTHER);
  for (const [path, heading, empty] of [
    ["/datasets", "Datasets", "No datasets yet"], ["/train_jobs", "Train jobs", "No train jobs yet"],
    ["/inference_jobs", "Inference jobs", "Nothing deployed yet"],
  ]) {
    await go(path, heading);
    await page.getByText(empty).waitFor();
    await axe(`${heading} (another user)`);
  }
  await go("/models", "Models");
  await page.getByRole("cell", { name: "SlicedMLP", exact: true }).waitFor();
  assert.equal(await page.getByRole("cell", { name: MODEL }).count(), 0);
  await page.goto(`${URL}/ui/train_jobs/${APP}/1`);
  await page.getByRole("alert").filter({ hasText: "not_found" }).first().waitFor();
  assert.equal(await page.getByRole("link", { name: "Users" }).count(), 0); // role-aware navigation
  await shot("09-other-user");
  await logout();
});

step("an admin manages users", async () => {
  await login(ROOT);
  await go("/users", "Users");
  const form = page.getByRole("form", { name: "Create a user" });
  await form.getByLabel("E-mail").fill(NEW_USER);
  await form.getByLabel(/^Password/).fill("a-fine-password");
  await form.getByLabel("Role").selectOption("APP_USER");
  await form.getByRole("button", { name: "Create" }).click();
  await page.getByText(`Created ${NEW_USER}.`).waitFor();
  await page.getByLabel(`Role of ${NEW_USER}`).selectOption("APP_DEVELOPER");
  await page.waitForFunction((email) =>
    document.querySelector(`select[aria-label="Role of ${email}"]`)?.value === "APP_DEVELOPER", NEW_USER);
  await page.getByRole("button", { name: `Disable ${NEW_USER}` }).click();
  await page.getByRole("row", { name: NEW_USER }).getByText(/^disabled/).waitFor();
  await axe("users");
  await shot("10-users");
});

step("works on a 390-wide phone screen, light and dark", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await go(`/train_jobs/${APP}/1`, "Train job");
  await page.getByRole("figure", { name: "Best score so far, by trial" }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than the screen`);
  await axe("train job (phone)");
  await shot("11-phone");
  // dark by the system's setting, and still readable
  await page.emulateMedia({ colorScheme: "dark" });
  assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), "rgb(20, 23, 28)");
  await axe("train job (phone, dark)");
  await shot("12-phone-dark");
});
