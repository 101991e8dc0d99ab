-- Issue #14, languages: the language a staff member chose for the staff app (en, nl or de).
-- NULL (the default, and every existing row) means "not chosen": the app follows the browser's
-- languages, as it does before anyone signs in.
alter table staff add column language text check (language in ('en', 'nl', 'de'));
