-- Why a seat is inactive, and what inactive seats cost. Keep in step with
-- ../sqlite/0013_seat_grace_and_prices.sql.
--
-- new_seat_grace_days: a seat assigned within this many days is never
-- inactive, whatever the range (docs/decisions/0017).
ALTER TABLE accounts ADD COLUMN new_seat_grace_days INTEGER NOT NULL DEFAULT 14
    CHECK (new_seat_grace_days BETWEEN 0 AND 365);

-- A subscription's price per seat per year, in hundredths of its currency
-- (ISO 4217 code); 0 and '' when no price is known.
ALTER TABLE subscriptions ADD COLUMN price_cents BIGINT NOT NULL DEFAULT 0 CHECK (price_cents >= 0);
ALTER TABLE subscriptions ADD COLUMN currency TEXT NOT NULL DEFAULT '';

-- A person reclaim policies never touch (service accounts, key people).
ALTER TABLE users ADD COLUMN reclaim_exempt BOOLEAN NOT NULL DEFAULT FALSE;
