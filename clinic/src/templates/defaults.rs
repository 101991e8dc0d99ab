//! The built-in texts (the fallback when an organisation's sets do not hold a kind/language):
//! short and friendly, in English, Dutch and German.

use super::model::{Language, Template, TemplateKind};

/// The built-in template of `kind` in `language`.
pub fn builtin(kind: TemplateKind, language: Language) -> Template {
    let (subject, paragraphs, button) = texts(kind, language);
    let mut text = String::new();
    let mut html = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"></head>\n\
         <body style=\"font-family: Arial, Helvetica, sans-serif; font-size: 16px; \
         line-height: 1.5; color: #1f2933; max-width: 36em; margin: 0 auto; padding: 1em\">\n",
    );
    for paragraph in paragraphs {
        if *paragraph == BUTTON {
            text.push_str(&format!("{button}:\n*|LINK|*\n\n"));
            html.push_str(&format!(
                "<p style=\"margin: 1.5em 0\"><a href=\"*|LINK|*\" style=\"background: #1d6fa5; \
                 color: #ffffff; padding: 0.7em 1.2em; border-radius: 6px; \
                 text-decoration: none; font-weight: bold\">{button}</a></p>\n\
                 <p style=\"font-size: 13px; color: #52606d\">*|LINK|*</p>\n"
            ));
        } else {
            text.push_str(paragraph);
            text.push_str("\n\n");
            html.push_str("<p>");
            html.push_str(&paragraph.replace('\n', "<br>\n"));
            html.push_str("</p>\n");
        }
    }
    html.push_str("</body></html>\n");
    Template {
        subject: subject.to_owned(),
        html_body: html,
        text_body: text.trim_end().to_owned() + "\n",
    }
}

/// Where the link (button in HTML, line in text) goes.
const BUTTON: &str = "\u{0}button";

type Texts = (&'static str, &'static [&'static str], &'static str);

fn texts(kind: TemplateKind, language: Language) -> Texts {
    use Language::*;
    use TemplateKind::*;
    match (kind, language) {
        (AppointmentInvitation, En) => (
            "Your video appointment on *|DATE|* at *|TIME|*",
            &[
                "Dear *|CLIENT_NAME|*,",
                "You have a video appointment with *|PRACTITIONER|* of *|ORGANISATION|* on \
                 *|DATE|* at *|TIME|* (*|TIME_ZONE|*), for *|DURATION|* minutes.",
                "*|MESSAGE|*",
                "You can enter the waiting room from *|OPENS_AT|*. The link is yours alone: \
                 please do not pass it on.",
                BUTTON,
                "The attached calendar file puts the appointment in your calendar. \
                 Can you not make it? Please let us know: *|CONTACT|*",
                "Kind regards,\n*|ORGANISATION|*",
            ],
            "Go to the waiting room",
        ),
        (AppointmentInvitation, Nl) => (
            "Uw video-afspraak op *|DATE|* om *|TIME|*",
            &[
                "Beste *|CLIENT_NAME|*,",
                "U heeft een video-afspraak met *|PRACTITIONER|* van *|ORGANISATION|* op \
                 *|DATE|* om *|TIME|* (*|TIME_ZONE|*), voor *|DURATION|* minuten.",
                "*|MESSAGE|*",
                "Vanaf *|OPENS_AT|* kunt u de wachtkamer binnengaan. De link is alleen voor u: \
                 geef hem niet door.",
                BUTTON,
                "Met het bijgevoegde agendabestand zet u de afspraak in uw agenda. \
                 Kunt u niet komen? Laat het ons weten: *|CONTACT|*",
                "Met vriendelijke groet,\n*|ORGANISATION|*",
            ],
            "Naar de wachtkamer",
        ),
        (AppointmentInvitation, De) => (
            "Ihr Videotermin am *|DATE|* um *|TIME|* Uhr",
            &[
                "Guten Tag *|CLIENT_NAME|*,",
                "Sie haben einen Videotermin bei *|PRACTITIONER|* (*|ORGANISATION|*) am \
                 *|DATE|* um *|TIME|* Uhr (*|TIME_ZONE|*), Dauer *|DURATION|* Minuten.",
                "*|MESSAGE|*",
                "Ab *|OPENS_AT|* Uhr können Sie den Warteraum betreten. Der Link gilt nur für \
                 Sie: Bitte geben Sie ihn nicht weiter.",
                BUTTON,
                "Mit der beigefügten Kalenderdatei tragen Sie den Termin in Ihren Kalender ein. \
                 Sie können nicht teilnehmen? Bitte geben Sie uns Bescheid: *|CONTACT|*",
                "Mit freundlichen Grüßen\n*|ORGANISATION|*",
            ],
            "Zum Warteraum",
        ),
        (AppointmentUpdate, En) => (
            "Your video appointment has moved to *|DATE|* at *|TIME|*",
            &[
                "Dear *|CLIENT_NAME|*,",
                "Your video appointment with *|PRACTITIONER|* of *|ORGANISATION|* has a new \
                 time: *|DATE|* at *|TIME|* (*|TIME_ZONE|*), for *|DURATION|* minutes.",
                "*|MESSAGE|*",
                "You can enter the waiting room from *|OPENS_AT|*.",
                BUTTON,
                "The attached calendar file updates the appointment in your calendar. \
                 Questions? *|CONTACT|*",
                "Kind regards,\n*|ORGANISATION|*",
            ],
            "Go to the waiting room",
        ),
        (AppointmentUpdate, Nl) => (
            "Uw video-afspraak is verplaatst naar *|DATE|* om *|TIME|*",
            &[
                "Beste *|CLIENT_NAME|*,",
                "Uw video-afspraak met *|PRACTITIONER|* van *|ORGANISATION|* heeft een nieuwe \
                 tijd: *|DATE|* om *|TIME|* (*|TIME_ZONE|*), voor *|DURATION|* minuten.",
                "*|MESSAGE|*",
                "Vanaf *|OPENS_AT|* kunt u de wachtkamer binnengaan.",
                BUTTON,
                "Het bijgevoegde agendabestand past de afspraak in uw agenda aan. \
                 Vragen? *|CONTACT|*",
                "Met vriendelijke groet,\n*|ORGANISATION|*",
            ],
            "Naar de wachtkamer",
        ),
        (AppointmentUpdate, De) => (
            "Ihr Videotermin wurde verschoben: *|DATE|* um *|TIME|* Uhr",
            &[
                "Guten Tag *|CLIENT_NAME|*,",
                "Ihr Videotermin bei *|PRACTITIONER|* (*|ORGANISATION|*) hat eine neue Zeit: \
                 *|DATE|* um *|TIME|* Uhr (*|TIME_ZONE|*), Dauer *|DURATION|* Minuten.",
                "*|MESSAGE|*",
                "Ab *|OPENS_AT|* Uhr können Sie den Warteraum betreten.",
                BUTTON,
                "Die beigefügte Kalenderdatei aktualisiert den Termin in Ihrem Kalender. \
                 Fragen? *|CONTACT|*",
                "Mit freundlichen Grüßen\n*|ORGANISATION|*",
            ],
            "Zum Warteraum",
        ),
        (AppointmentCancellation, En) => (
            "Cancelled: your video appointment on *|DATE|* at *|TIME|*",
            &[
                "Dear *|CLIENT_NAME|*,",
                "Your video appointment with *|PRACTITIONER|* of *|ORGANISATION|* on *|DATE|* \
                 at *|TIME|* (*|TIME_ZONE|*) has been cancelled. The link to the waiting room \
                 no longer works.",
                "*|MESSAGE|*",
                "The attached calendar file removes the appointment from your calendar. \
                 For a new appointment, please contact us: *|CONTACT|*",
                "Kind regards,\n*|ORGANISATION|*",
            ],
            "",
        ),
        (AppointmentCancellation, Nl) => (
            "Geannuleerd: uw video-afspraak op *|DATE|* om *|TIME|*",
            &[
                "Beste *|CLIENT_NAME|*,",
                "Uw video-afspraak met *|PRACTITIONER|* van *|ORGANISATION|* op *|DATE|* om \
                 *|TIME|* (*|TIME_ZONE|*) is geannuleerd. De link naar de wachtkamer werkt niet \
                 meer.",
                "*|MESSAGE|*",
                "Het bijgevoegde agendabestand haalt de afspraak uit uw agenda. \
                 Voor een nieuwe afspraak kunt u contact met ons opnemen: *|CONTACT|*",
                "Met vriendelijke groet,\n*|ORGANISATION|*",
            ],
            "",
        ),
        (AppointmentCancellation, De) => (
            "Abgesagt: Ihr Videotermin am *|DATE|* um *|TIME|* Uhr",
            &[
                "Guten Tag *|CLIENT_NAME|*,",
                "Ihr Videotermin bei *|PRACTITIONER|* (*|ORGANISATION|*) am *|DATE|* um \
                 *|TIME|* Uhr (*|TIME_ZONE|*) wurde abgesagt. Der Link zum Warteraum \
                 funktioniert nicht mehr.",
                "*|MESSAGE|*",
                "Die beigefügte Kalenderdatei entfernt den Termin aus Ihrem Kalender. \
                 Für einen neuen Termin wenden Sie sich bitte an uns: *|CONTACT|*",
                "Mit freundlichen Grüßen\n*|ORGANISATION|*",
            ],
            "",
        ),
        (AppointmentReminder, En) => (
            "Reminder: your video appointment on *|DATE|* at *|TIME|*",
            &[
                "Dear *|CLIENT_NAME|*,",
                "A reminder of your video appointment with *|PRACTITIONER|* of \
                 *|ORGANISATION|* on *|DATE|* at *|TIME|* (*|TIME_ZONE|*).",
                "You can enter the waiting room from *|OPENS_AT|*. Find a quiet spot and \
                 check that your camera and microphone work.",
                BUTTON,
                "Can you not make it? Please let us know: *|CONTACT|*",
                "Kind regards,\n*|ORGANISATION|*",
            ],
            "Go to the waiting room",
        ),
        (AppointmentReminder, Nl) => (
            "Herinnering: uw video-afspraak op *|DATE|* om *|TIME|*",
            &[
                "Beste *|CLIENT_NAME|*,",
                "Een herinnering aan uw video-afspraak met *|PRACTITIONER|* van \
                 *|ORGANISATION|* op *|DATE|* om *|TIME|* (*|TIME_ZONE|*).",
                "Vanaf *|OPENS_AT|* kunt u de wachtkamer binnengaan. Zoek een rustige plek en \
                 controleer of uw camera en microfoon werken.",
                BUTTON,
                "Kunt u niet komen? Laat het ons weten: *|CONTACT|*",
                "Met vriendelijke groet,\n*|ORGANISATION|*",
            ],
            "Naar de wachtkamer",
        ),
        (AppointmentReminder, De) => (
            "Erinnerung: Ihr Videotermin am *|DATE|* um *|TIME|* Uhr",
            &[
                "Guten Tag *|CLIENT_NAME|*,",
                "Wir erinnern Sie an Ihren Videotermin bei *|PRACTITIONER|* (*|ORGANISATION|*) \
                 am *|DATE|* um *|TIME|* Uhr (*|TIME_ZONE|*).",
                "Ab *|OPENS_AT|* Uhr können Sie den Warteraum betreten. Suchen Sie sich einen \
                 ruhigen Ort und prüfen Sie, ob Kamera und Mikrofon funktionieren.",
                BUTTON,
                "Sie können nicht teilnehmen? Bitte geben Sie uns Bescheid: *|CONTACT|*",
                "Mit freundlichen Grüßen\n*|ORGANISATION|*",
            ],
            "Zum Warteraum",
        ),
        (StaffInvitation, En) => (
            "You are invited to Consultroom for *|ORGANISATION|*",
            &[
                "Dear *|NAME|*,",
                "*|ORGANISATION|* invites you to hold video consultations with Consultroom. \
                 Choose your password to get started. The link works once, until *|EXPIRES|*.",
                BUTTON,
                "Did you not expect this mail? Then you can ignore it.",
            ],
            "Set your password",
        ),
        (StaffInvitation, Nl) => (
            "Uitnodiging voor Consultroom van *|ORGANISATION|*",
            &[
                "Beste *|NAME|*,",
                "*|ORGANISATION|* nodigt u uit om videoconsulten te houden met Consultroom. \
                 Kies uw wachtwoord om te beginnen. De link werkt één keer, tot *|EXPIRES|*.",
                BUTTON,
                "Had u deze e-mail niet verwacht? Dan kunt u hem negeren.",
            ],
            "Wachtwoord instellen",
        ),
        (StaffInvitation, De) => (
            "Einladung zu Consultroom von *|ORGANISATION|*",
            &[
                "Guten Tag *|NAME|*,",
                "*|ORGANISATION|* lädt Sie ein, Videosprechstunden mit Consultroom zu halten. \
                 Wählen Sie Ihr Passwort, um zu beginnen. Der Link funktioniert einmal, bis \
                 *|EXPIRES|*.",
                BUTTON,
                "Haben Sie diese E-Mail nicht erwartet? Dann können Sie sie ignorieren.",
            ],
            "Passwort festlegen",
        ),
        (PasswordReset, En) => (
            "Reset your Consultroom password",
            &[
                "Dear *|NAME|*,",
                "Someone, probably you, asked to reset your password for *|ORGANISATION|*. \
                 The link works once, until *|EXPIRES|*.",
                BUTTON,
                "Did you not ask for this? Then ignore this mail: your password stays as it is.",
            ],
            "Choose a new password",
        ),
        (PasswordReset, Nl) => (
            "Uw Consultroom-wachtwoord opnieuw instellen",
            &[
                "Beste *|NAME|*,",
                "Iemand, waarschijnlijk u, heeft gevraagd uw wachtwoord voor *|ORGANISATION|* \
                 opnieuw in te stellen. De link werkt één keer, tot *|EXPIRES|*.",
                BUTTON,
                "Heeft u dit niet gevraagd? Negeer dan deze e-mail: uw wachtwoord blijft \
                 hetzelfde.",
            ],
            "Nieuw wachtwoord kiezen",
        ),
        (PasswordReset, De) => (
            "Ihr Consultroom-Passwort zurücksetzen",
            &[
                "Guten Tag *|NAME|*,",
                "Jemand, wahrscheinlich Sie, hat angefordert, Ihr Passwort für \
                 *|ORGANISATION|* zurückzusetzen. Der Link funktioniert einmal, bis \
                 *|EXPIRES|*.",
                BUTTON,
                "Haben Sie das nicht angefordert? Dann ignorieren Sie diese E-Mail: Ihr \
                 Passwort bleibt unverändert.",
            ],
            "Neues Passwort wählen",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_template_is_valid() {
        for kind in TemplateKind::ALL {
            for lang in Language::ALL {
                builtin(kind, lang)
                    .validate(kind)
                    .unwrap_or_else(|e| panic!("{kind:?} {lang:?}: {e}"));
            }
        }
    }
}
