// Usher console: small enhancements. Every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Arrows that fold a contract's services or benefits. Without script the
  // lists simply stay open and the arrows stay hidden.
  for (const button of document.querySelectorAll("button.toggle[aria-controls]")) {
    const list = document.getElementById(button.getAttribute("aria-controls"));
    if (!list) continue;
    const set = (open) => {
      button.setAttribute("aria-expanded", String(open));
      list.hidden = !open;
    };
    set(false);
    button.hidden = false;
    button.addEventListener("click", () => set(button.getAttribute("aria-expanded") !== "true"));
  }

  // A service needs its contract's seat: ticking a service ticks Assign on
  // the contract, clearing Assign clears its services. The server checks the
  // same rule; this only saves a round trip.
  for (const box of document.querySelectorAll("input[data-service-of]")) {
    box.addEventListener("change", () => {
      const seat = document.getElementById("assign-" + box.dataset.serviceOf);
      if (box.checked && seat && !seat.disabled) seat.checked = true;
    });
  }
  for (const seat of document.querySelectorAll("input[data-contract]")) {
    seat.addEventListener("change", () => {
      if (seat.checked) return;
      for (const box of document.querySelectorAll('input[data-service-of="' + seat.dataset.contract + '"]')) {
        box.checked = false;
      }
    });
  }

  // The menu button folds the navigation away on phones. Without script
  // the button stays hidden and the navigation stays open.
  const menuButton = document.getElementById("menu-button");
  const menu = document.getElementById("menu");
  if (menuButton && menu) {
    document.documentElement.classList.add("has-menu");
    menuButton.hidden = false;
    menuButton.addEventListener("click", () => {
      const open = menuButton.getAttribute("aria-expanded") !== "true";
      menuButton.setAttribute("aria-expanded", String(open));
      menu.classList.toggle("open", open);
    });
  }

  // One styled confirmation window for everything that gives something
  // up or loses changes. Without script (or <dialog>) forms simply submit.
  const confirmDialog = document.getElementById("confirm-dialog");
  const ask = (title, text, button, then) => {
    if (!confirmDialog || typeof confirmDialog.showModal !== "function") { then(); return; }
    document.getElementById("confirm-title").textContent = title;
    document.getElementById("confirm-text").textContent = text;
    const ok = document.getElementById("confirm-ok");
    ok.textContent = button;
    const cancel = document.getElementById("confirm-cancel");
    const done = (yes) => {
      ok.onclick = cancel.onclick = null;
      confirmDialog.close();
      if (yes) then();
    };
    ok.onclick = () => done(true);
    cancel.onclick = () => done(false);
    confirmDialog.showModal();
    cancel.focus();
  };

  // Each Edit Access tab saves on its own: switching tabs with unsaved
  // ticks would drop them, so ask first.
  for (const form of document.querySelectorAll("form.access")) {
    let dirty = false;
    form.addEventListener("change", () => { dirty = true; });
    form.addEventListener("submit", () => { dirty = false; });
    for (const link of document.querySelectorAll(".tabs a")) {
      link.addEventListener("click", (event) => {
        if (!dirty) return;
        event.preventDefault();
        ask("Leave without saving?", "You have changes on this tab that are not saved. Leave it without saving them?", "Leave without saving", () => {
          window.location.href = link.href;
        });
      });
    }
  }

  // Forms that give something up ask first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    let confirmed = false;
    form.addEventListener("submit", (event) => {
      if (confirmed) return;
      event.preventDefault();
      ask(form.dataset.confirmTitle || "Are you sure?", form.dataset.confirm, form.dataset.confirmButton || "Continue", () => {
        confirmed = true;
        form.requestSubmit();
      });
    });
  }

  // Usage Report: ticking rows shows a bar saying how many users and seats
  // are selected, with Unassign; Unassign asks in a dialog that names them.
  // Without script the bar stays shown and Unassign opens a confirmation
  // page instead.
  const report = document.getElementById("unassign-form");
  const bar = document.getElementById("selection-bar");
  if (report && bar) {
    const boxes = Array.from(report.querySelectorAll('input[name="seat"]'));
    const all = document.getElementById("select-all");
    const count = document.getElementById("selection-count");
    const dialog = document.getElementById("unassign-dialog");
    const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");
    const ticked = () => boxes.filter((b) => b.checked);
    // "Select all N matching": a selection by filter, which the server
    // finds again and unassigns only if it is still those N seats.
    const matching = document.getElementById("select-matching");
    const allInput = document.getElementById("all-input");
    const expected = document.getElementById("expected-input");
    const clear = document.getElementById("clear-selection");
    let byFilter = false;
    const button = document.getElementById("unassign");
    // The bar stays in place whether or not anything is selected, so the
    // table does not move under the pointer.
    const update = () => {
      const seats = ticked();
      const users = new Set(seats.map((b) => b.dataset.user)).size;
      if (byFilter) {
        count.textContent = "All " + plural(Number(matching.dataset.seats), "seat") + " matching the filter are selected, held by " +
          plural(Number(matching.dataset.users), "user") + ".";
      } else if (seats.length === 0) {
        count.textContent = "Tick users to unassign their seats.";
      } else {
        count.textContent = plural(users, "user") + " selected, holding " + plural(seats.length, "seat") + ".";
      }
      button.disabled = !byFilter && seats.length === 0;
      if (matching) {
        matching.hidden = byFilter;
        clear.hidden = !byFilter;
        allInput.disabled = expected.disabled = !byFilter;
      }
      if (all) {
        all.checked = seats.length > 0 && seats.length === boxes.length;
        all.indeterminate = seats.length > 0 && seats.length < boxes.length;
      }
    };
    if (all) {
      all.hidden = false;
      all.addEventListener("change", () => {
        for (const b of boxes) b.checked = all.checked;
        if (!all.checked) byFilter = false;
        update();
      });
    }
    for (const b of boxes) b.addEventListener("change", () => {
      if (!b.checked) byFilter = false;
      update();
    });
    if (matching) {
      matching.addEventListener("click", (event) => {
        event.preventDefault();
        byFilter = true;
        for (const b of boxes) b.checked = true;
        update();
        button.focus();
      });
      clear.addEventListener("click", () => {
        byFilter = false;
        for (const b of boxes) b.checked = false;
        update();
        matching.focus();
      });
    }
    update();
    if (dialog && typeof dialog.showModal === "function" && button) {
      button.addEventListener("click", (event) => {
        const seats = ticked();
        if (seats.length === 0 && !byFilter) return;
        event.preventDefault();
        const list = document.getElementById("unassign-dialog-list");
        if (byFilter) {
          document.getElementById("unassign-dialog-text").textContent =
            "Unassign all " + plural(Number(matching.dataset.seats), "seat") + " matching the filter, from " +
            plural(Number(matching.dataset.users), "user") + "?";
          const li = document.createElement("li");
          li.textContent = matching.dataset.heading;
          list.replaceChildren(li);
        } else {
          const users = new Set(seats.map((b) => b.dataset.user)).size;
          document.getElementById("unassign-dialog-text").textContent =
            "Unassign " + plural(seats.length, "seat") + " from " + plural(users, "user") + "?";
          list.replaceChildren(...seats.map((b) => {
            const li = document.createElement("li");
            li.textContent = b.dataset.name + " · " + b.dataset.contract;
            return li;
          }));
        }
        dialog.showModal();
      });
      document.getElementById("unassign-cancel").addEventListener("click", () => dialog.close());
    }
  }

  // Filters apply as soon as one changes: a choice from a list reloads the
  // page with it, a search when Enter is pressed. Apply is hidden, since
  // nothing waits for it; without script it stays and does the same.
  // After the reload the changed field has the focus again, so a keyboard
  // user carries on where they were.
  const refocus = sessionStorage.getItem("usher-refocus");
  if (refocus) {
    sessionStorage.removeItem("usher-refocus");
    const field = document.getElementById(refocus);
    if (field && field.closest("form.filters")) field.focus();
  }
  for (const form of document.querySelectorAll("form.filters")) {
    const apply = form.querySelector(".buttons button[type=submit]");
    if (apply) apply.hidden = true;
    for (const field of form.querySelectorAll("select")) {
      field.addEventListener("change", () => {
        sessionStorage.setItem("usher-refocus", field.id);
        form.requestSubmit();
      });
    }
    form.addEventListener("submit", () => {
      const active = document.activeElement;
      if (active && active.id && form.contains(active)) sessionStorage.setItem("usher-refocus", active.id);
    });
  }

  // Users list: the bar counts the ticked users, and Disable asks in the
  // confirmation window with that exact number. Without script the button
  // disables whoever is ticked (the server refuses an empty selection).
  const usersForm = document.getElementById("users-form");
  const usersBar = document.getElementById("users-bar");
  if (usersForm && usersBar) {
    const boxes = Array.from(usersForm.querySelectorAll('input[name="user"]:not([disabled])'));
    const all = document.getElementById("select-all-users");
    const count = document.getElementById("users-selection");
    const button = document.getElementById("disable-selected");
    const users = (n) => n + " user" + (n === 1 ? "" : "s");
    const update = () => {
      const n = boxes.filter((b) => b.checked).length;
      count.textContent = n === 0 ? "Tick users to disable several at once." : users(n) + " selected.";
      button.textContent = n === 0 ? "Disable selected" : "Disable " + users(n);
      button.disabled = n === 0;
      usersForm.dataset.confirm = "Disable " + users(n) + "? They can no longer sign in, and their API tokens are revoked.";
      usersForm.dataset.confirmButton = "Disable " + users(n);
      if (all) {
        all.checked = n > 0 && n === boxes.length;
        all.indeterminate = n > 0 && n < boxes.length;
      }
    };
    if (all && boxes.length > 0) {
      all.hidden = false;
      all.addEventListener("change", () => {
        for (const b of boxes) b.checked = all.checked;
        update();
      });
    }
    for (const b of boxes) b.addEventListener("change", update);
    update();
  }
});
