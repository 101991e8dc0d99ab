// Clinic API calls made from a logged-in staff page (real same-origin browser requests carrying
// the session cookie), per clinic/openapi.json: POST /api/v1/clients, POST /api/v1/appointments.

/**
 * Creates a client and books an appointment starting `inMinutes` from now (positive = the patient
 * will be on time). Resolves `{ invitationUrl }` on `baseUrl`, or `{ error }` with the status.
 */
export async function bookAppointment(page, { baseUrl, clientName, inMinutes = 2, durationMinutes = 15 }) {
  const result = await page.evaluate(async ({ name, startsAt, duration }) => {
    const post = async (path, body) => {
      const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, body: await r.json().catch(() => null) };
    };
    const c = await post('/api/v1/clients', { name });
    if (c.status !== 201) return { error: `POST /api/v1/clients → ${c.status} ${c.body?.error?.code || ''}` };
    const a = await post('/api/v1/appointments', { client_id: c.body.client.id, starts_at: startsAt, duration_minutes: duration });
    if (a.status !== 201) return { error: `POST /api/v1/appointments → ${a.status} ${a.body?.error?.code || ''}` };
    return { url: a.body.invitation_url };
  }, { name: clientName, startsAt: new Date(Date.now() + inMinutes * 60_000).toISOString(), duration: durationMinutes });
  if (result.error) return { error: result.error };
  // The invitation URL is built on the configured public URL; open it on the server under test.
  const u = new URL(result.url);
  return { invitationUrl: `${baseUrl.replace(/\/$/, '')}${u.pathname}${u.hash}` };
}
