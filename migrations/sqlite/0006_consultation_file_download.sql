-- consultation file downloads (issue #5, F108-F111): one row per download of a file shared in a
-- consultation; ids only (no file or person names). the files themselves are never stored in the
-- database and are deleted when their consultation ends; this record of access is kept.
-- sqlite flavour; append-only: never edit once applied.
create table consultation_file_download (
    consultation_file_download_id text primary key not null,
    file_id text not null,
    consultation_id text not null,
    participant_id text not null,
    role text not null check (role in ('staff', 'patient')),
    -- staff id, or the patient's appointment or walk-in visit id
    subject_id text not null,
    downloaded_at text not null
) strict;

create index consultation_file_download_file on consultation_file_download (file_id);
create index consultation_file_download_subject on consultation_file_download (subject_id);
