-- 0026_contact: the contact form (live/contact.py). The `contacts` table of 0001 gains where a message came from
-- (client address, user agent), and who read and answered it and when. Statuses: new -> read (an admin opened it)
-- -> answered (an admin marked it answered); spam (the honeypot field was filled: stored, no mail sent).
-- The service writes as system and reads as an admin (it authorizes, live/auth/policy.py): contacts_privileged
-- of 0005 covers both; 0005's contacts_insert (anyone may insert a 'new' row, not read it) stays as it was.
-- 0001's check forbids the new statuses: drop it before the old ones are rewritten
ALTER TABLE contacts DROP CONSTRAINT IF EXISTS contacts_status_check;
UPDATE contacts SET status = 'answered' WHERE status = 'replied';
UPDATE contacts SET status = 'read' WHERE status = 'archived';
ALTER TABLE contacts ADD CONSTRAINT contacts_status_check CHECK (status IN ('new', 'read', 'answered', 'spam'));
ALTER TABLE contacts
    ADD COLUMN ip          text CHECK (char_length(ip) <= 64),
    ADD COLUMN user_agent  text CHECK (char_length(user_agent) <= 500),
    ADD COLUMN read_at     timestamptz,
    ADD COLUMN read_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN answered_at timestamptz,
    ADD COLUMN answered_by uuid REFERENCES users (id) ON DELETE SET NULL;

-- the admins' list: newest first, by status or all of them (cursor: created_at, id)
DROP INDEX IF EXISTS contacts_status_idx;
CREATE INDEX contacts_status_idx ON contacts (status, created_at DESC, id DESC);
CREATE INDEX contacts_created_idx ON contacts (created_at DESC, id DESC);
