"""aiosmtpd handler for the tests: a Maildir (every accepted message is one file in DIR/new/,
as aiosmtpd.handlers.Mailbox writes it) plus failure cases chosen by the recipient's local part:

- ``reject...@``   : 550 at RCPT (a permanent refusal, never to be retried);
- ``tempfail...@`` : 451 at RCPT the first time this address is seen, accepted afterwards;
- ``stall...@``    : the first time this address is seen, RCPT is not answered for up to
                     HOLD_SECONDS (nothing is stored: a sender killed meanwhile sent nothing);
                     answered 250 at once afterwards;
- ``hold...@``     : the first message to this address is stored in the Maildir and then the
                     250 after DATA is withheld for up to HOLD_SECONDS (the server has the
                     message, the sender has not heard so): the crash window that duplicates;
                     later messages to it are accepted at once;
- anything else    : accepted.

Run: python -m aiosmtpd -n -l 127.0.0.1:PORT -c test_handler.TestHandler DIR
(with this folder on PYTHONPATH). Every RCPT is appended to DIR/rcpt.log as "<code> <address>";
a stalled RCPT as "stall <address>", a held message (already stored) as "held <address>".
"""

import asyncio
import mailbox
import os

from aiosmtpd.handlers import Mailbox


class TestHandler(Mailbox):
    def __init__(self, mail_dir):
        super().__init__(mail_dir)
        self.dir = mail_dir
        self.seen = set()
        self.hold_seconds = float(os.environ.get("HOLD_SECONDS", "120"))

    def _log(self, code, address):
        with open(os.path.join(self.dir, "rcpt.log"), "a", encoding="utf-8") as f:
            f.write(f"{code} {address}\n")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            self._log(550, address)
            return "550 5.1.1 No such user here"
        if local.startswith("tempfail") and address not in self.seen:
            self.seen.add(address)
            self._log(451, address)
            return "451 4.3.0 Try again later"
        if local.startswith("stall") and address not in self.seen:
            self.seen.add(address)
            self._log("stall", address)
            await asyncio.sleep(self.hold_seconds)
        self._log(250, address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        held = [
            a for a in envelope.rcpt_tos
            if a.split("@", 1)[0].lower().startswith("hold") and ("held", a) not in self.seen
        ]
        if held:
            for a in held:
                self.seen.add(("held", a))
                self._log("held", a)
            await asyncio.sleep(self.hold_seconds)
        return reply

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("the handler needs the Maildir path")
        path = args[0]
        if not os.path.isdir(path):
            mailbox.Maildir(path, create=True)
        return cls(path)
