"""aiosmtpd handler for the reminders benchmark (loadtest/src/bin/reminders.rs): accepts every
message, stores none, and appends one line per message to LOG as it arrives:

    <arrival, ms since the unix epoch>\t<Message-ID header, as sent>\n

(flushed at once, so the benchmark can follow the count while the run goes on; it counts each
Message-ID's copies and takes its first arrival). The arrival is taken when the message's DATA
has been received, before the 250 goes back.

Run: python -m aiosmtpd -n -l 127.0.0.1:PORT -c count_handler.CountHandler LOG
(with this folder on PYTHONPATH).
"""

import time


class CountHandler:
    def __init__(self, log_path):
        # Line-buffered text file: one write and flush per message, no fsync (the run is local).
        self.log = open(log_path, "a", encoding="utf-8", buffering=1)

    async def handle_DATA(self, server, session, envelope):
        arrived = time.time_ns() // 1_000_000
        message_id = ""
        content = envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        head = content.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n"):
            if line[:11].lower() == b"message-id:":
                message_id = line[11:].strip().decode("ascii", "replace")
                break
        self.log.write(f"{arrived}\t{message_id}\n")
        return "250 OK"

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("the handler needs the path of its log")
        return cls(args[0])
