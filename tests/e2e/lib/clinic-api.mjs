// Clinic API calls made from a logged-in staff page (real same-origin browser requests carrying
// the session cookie), per clinic/openapi.json: POST /api/v1/clients, POST /api/v1/appointments.

/**
 * Creates a client and books an appointment starting `inMinutes` from now (positive = the patient
 * will be on time); `extra` is merged into the appointment body (e.g. `department_id`,
 * `waiting_room`). Resolves `{ invitationUrl, appointment }` on `baseUrl`, or `{ error }`.
 */
export async function bookAppointment(page, { baseUrl, clientName, inMinutes = 2, durationMinutes = 15, extra = {} }) {
  const result = await page.evaluate(async ({ name, startsAt, duration, extra }) => {
    const post = async (path, body) => {
      const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, body: await r.json().catch(() => null) };
    };
    const c = await post('/api/v1/clients', { name });
    if (c.status !== 201) return { error: `POST /api/v1/clients → ${c.status} ${c.body?.error?.code || ''}` };
    const a = await post('/api/v1/appointments', { client_id: c.body.client.id, starts_at: startsAt, duration_minutes: duration, ...extra });
    if (a.status !== 201) return { error: `POST /api/v1/appointments → ${a.status} ${a.body?.error?.code || ''} ${a.body?.error?.message || ''}`.trim() };
    return { url: a.body.invitation_url, appointment: a.body.appointment || null };
  }, { name: clientName, startsAt: new Date(Date.now() + inMinutes * 60_000).toISOString(), duration: durationMinutes, extra });
  if (result.error) return { error: result.error };
  // The invitation URL is built on the configured public URL; open it on the server under test.
  const u = new URL(result.url);
  return { invitationUrl: `${baseUrl.replace(/\/$/, '')}${u.pathname}${u.hash}`, appointment: result.appointment };
}

/** A JSON API call from a logged-in staff page: resolves `{ status, body }`. */
export function apiCall(page, method, path, body) {
  return page.evaluate(async ({ method, path, body }) => {
    const r = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    return { status: r.status, body: json };
  }, { method, path, body });
}
