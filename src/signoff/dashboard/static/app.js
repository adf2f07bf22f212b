// Signoff's dashboard script: small enhancements of pages that work without it.
// - forms with data-busy show progress and cannot be sent twice;
// - a schedule field previews its schedule in words;
// - pages with data-live-url follow a Server-Sent Events stream and refresh their live regions.
"use strict";

// Forms: while the POST is in flight, the clicked button says what is happening.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.dataset.busy === undefined) return;
  const button = event.submitter || form.querySelector("button[type=submit]");
  // After the event: a button disabled now would drop its name/value from the form data.
  setTimeout(() => {
    form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    if (button && form.dataset.busy) button.textContent = form.dataset.busy;
    form.querySelectorAll(".busy-note").forEach((note) => { note.hidden = false; });
    form.setAttribute("aria-busy", "true");
  }, 0);
});

// Schedule preview: "At 09:00, only on Monday (Europe/Paris). Next run: …"
function setUpSchedulePreview() {
  const preview = document.getElementById("schedule-preview");
  const schedule = document.getElementById("schedule");
  const timezone = document.getElementById("timezone");
  if (!preview || !schedule || !timezone) return;
  if (timezone.dataset.guess !== undefined && timezone.value === "UTC") {
    const guess = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (guess) timezone.value = guess;
  }
  let timer = 0;
  let asked = 0;
  const update = () => {
    const query = new URLSearchParams({ schedule: schedule.value, timezone: timezone.value });
    const ticket = ++asked;
    fetch(`${preview.dataset.previewUrl}?${query}`, { headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((answer) => {
        if (!answer || ticket !== asked) return; // an older answer arriving late
        preview.textContent = answer.text;
        preview.classList.toggle("error", !answer.valid);
        schedule.setAttribute("aria-invalid", String(!answer.valid));
      })
      .catch(() => {});
  };
  const soon = () => { clearTimeout(timer); timer = setTimeout(update, 250); };
  schedule.addEventListener("input", soon);
  timezone.addEventListener("input", soon);
  timezone.addEventListener("change", soon);
  // At once when there is something to say: a guessed timezone, or a schedule typed before this
  // script ran (it is deferred) or restored by the browser, whose input events came too early.
  if (timezone.value !== "UTC" || schedule.value.trim() || !preview.textContent.trim()) update();
}

// Live regions: elements with an id and data-live are replaced by their fresh copy.
function userIsEditing(region) {
  if (region.contains(document.activeElement) && document.activeElement !== document.body) {
    return true;
  }
  return [...region.querySelectorAll("textarea, input")].some(
    (field) => field.value !== field.defaultValue,
  );
}

function setUpLiveUpdates() {
  const url = document.body.dataset.liveUrl;
  if (!url || !window.EventSource) return;
  let shown = document.body.dataset.liveVersion;
  let latest = shown;
  let busy = false;
  const source = new EventSource(url);

  const sync = async () => {
    if (busy || latest === shown) return;
    busy = true;
    const target = latest;
    try {
      const response = await fetch(window.location.href, {
        headers: { Accept: "text/html" },
        cache: "no-store",
      });
      if (!response.ok || response.redirected) {
        source.close(); // signed out, or the page is gone: stop following
        return;
      }
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      document.querySelectorAll("[data-live][id]").forEach((region) => {
        const update = fresh.getElementById(region.id);
        if (!update || userIsEditing(region)) return;
        region.querySelectorAll("details[id][open]").forEach((open) => {
          const twin = update.querySelector(`#${CSS.escape(open.id)}`);
          if (twin) twin.open = true;
        });
        region.replaceWith(document.adoptNode(update));
      });
      shown = target;
    } catch {
      // A network hiccup: the next event tries again.
    } finally {
      busy = false;
    }
    if (shown === target) sync(); // it may have changed again meanwhile
  };

  source.addEventListener("open", () => {
    document.querySelectorAll(".live-note").forEach((note) => { note.hidden = false; });
  });
  source.addEventListener("message", (event) => {
    latest = event.data;
    sync();
  });
}

setUpSchedulePreview();
setUpLiveUpdates();
