/**
 * Sign-in: the user pastes a tenant token (from POST /v1/tenants/{id}/tokens, the README's first
 * steps). It is checked against the API, then kept in sessionStorage only: it lives as long as the
 * browser tab, is never put in a URL, and signing out removes it.
 */
import { ApiError, api, clearToken, getToken, setToken } from "../api";
import { navigate, registerPage } from "../router";
import { errorBanner, field, h, pageHeader, replace, status } from "../ui";

registerPage("/sign-in", (root, params) => {
  const token = field(
    "Tenant token",
    h("textarea", { name: "token", required: true, autocomplete: "off", spellcheck: "false", autocapitalize: "off", rows: 4 }),
    { hint: "A token from POST /v1/tenants/{id}/tokens (see the README's first steps). It stays in this browser tab only." },
  );
  const errors = h("div");
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "panel", novalidate: true }, token.wrapper, errors, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = token.control.value.trim().replace(/^Bearer\s+/i, "");
    token.setError(null);
    replace(errors);
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(value)) {
      token.setError("Paste the whole token: three parts separated by dots (a JWT).");
      token.control.focus();
      return;
    }
    submit.disabled = true;
    setToken(value);
    try {
      // Any tenant route proves the token: 401 means it is not valid; 403 only that it lacks this scope.
      await api("GET", "/v2/integrations", undefined, { query: { limit: 1 } });
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 403)) {
        clearToken();
        submit.disabled = false;
        replace(errors, errorBanner(err, "The token was not accepted"));
        token.control.focus();
        return;
      }
    }
    status("Signed in.");
    const next = params.next && params.next.startsWith("/") && params.next !== "/sign-in" ? params.next : "/integrations";
    navigate(next);
  });

  const signedIn = getToken() !== null;
  root.append(
    h(
      "div",
      { class: "sign-in" },
      pageHeader("Sign in to the Integration Hub"),
      h("p", null, "Set up integrations, edit and test their mappings, monitor their events and install blueprints, all through erp-edge's public API with your tenant token."),
      signedIn ? h("p", { class: "muted" }, "You are signed in; signing in again replaces the token.") : null,
      form,
    ),
  );
});
