-- 0002_catalog: categories, products, variants with stock counters, inventory ledger,
-- coupons, wishlists.

-- ---------------------------------------------------------------------------
-- Category tree
-- ---------------------------------------------------------------------------
CREATE TABLE categories (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    parent_id  uuid REFERENCES categories (id),
    name       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    slug       text NOT NULL UNIQUE CHECK (char_length(slug) BETWEEN 1 AND 120),
    position   int NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_id IS NULL OR parent_id <> id)
);
CREATE INDEX categories_parent_idx ON categories (parent_id, position);

-- ---------------------------------------------------------------------------
-- Products (full-text search over title + description)
-- ---------------------------------------------------------------------------
CREATE TABLE products (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seller_id   uuid NOT NULL REFERENCES sellers (id),
    category_id uuid REFERENCES categories (id) ON DELETE SET NULL,
    title       text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description text,
    image_urls  text[] NOT NULL DEFAULT '{}',
    status      text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'archived')),
    search      tsvector GENERATED ALWAYS AS (
                    to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(description, ''))
                ) STORED,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_search_idx ON products USING gin (search);
CREATE INDEX products_seller_idx ON products (seller_id, created_at DESC);
CREATE INDEX products_category_active_idx ON products (category_id, created_at DESC) WHERE status = 'active';
CREATE INDEX products_active_idx ON products (created_at DESC) WHERE status = 'active';
CREATE TRIGGER products_touch BEFORE UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- ---------------------------------------------------------------------------
-- Variants carry price and stock counters.
-- available = on_hand - reserved - sold; the CHECK makes overselling impossible.
-- ---------------------------------------------------------------------------
CREATE TABLE product_variants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    product_id  uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    sku         text NOT NULL UNIQUE,
    color       text,
    size        text,
    price_minor bigint NOT NULL CHECK (price_minor >= 0),
    currency    char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    on_hand     int NOT NULL DEFAULT 0,
    reserved    int NOT NULL DEFAULT 0,
    sold        int NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT product_variants_stock_check CHECK (
        on_hand >= 0 AND reserved >= 0 AND sold >= 0 AND reserved + sold <= on_hand
    )
);
CREATE INDEX product_variants_product_idx ON product_variants (product_id);
CREATE TRIGGER product_variants_touch BEFORE UPDATE ON product_variants
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- ---------------------------------------------------------------------------
-- Inventory ledger: append-only, one row per counter change.
-- quantity is the signed delta of the counter named by kind
-- (adjustment/return -> on_hand, reservation/release -> reserved, sale -> sold).
-- ---------------------------------------------------------------------------
CREATE TABLE inventory_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    variant_id      uuid NOT NULL REFERENCES product_variants (id),
    kind            text NOT NULL CHECK (kind IN ('adjustment', 'reservation', 'release', 'sale', 'return')),
    quantity        int NOT NULL CHECK (quantity <> 0),
    reason          text,
    actor_id        uuid,
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX inventory_events_idem_key ON inventory_events (variant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX inventory_events_variant_idx ON inventory_events (variant_id, id DESC);
CREATE TRIGGER inventory_events_append_only BEFORE UPDATE OR DELETE ON inventory_events
    FOR EACH ROW EXECUTE FUNCTION forbid_modification();
CREATE TRIGGER inventory_events_no_truncate BEFORE TRUNCATE ON inventory_events
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_modification();

-- ---------------------------------------------------------------------------
-- Coupons: seller_id NULL = platform-wide. Codes are unique per seller, case-insensitive.
-- ---------------------------------------------------------------------------
CREATE TABLE coupons (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seller_id          uuid REFERENCES sellers (id),
    code               text NOT NULL CHECK (code ~ '^[A-Za-z0-9_-]{1,64}$'),
    kind               text NOT NULL CHECK (kind IN ('amount', 'percent')),
    value              bigint NOT NULL CHECK (value > 0),
    currency           char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    starts_at          timestamptz,
    ends_at            timestamptz,
    usage_limit        int CHECK (usage_limit >= 0),
    used_count         int NOT NULL DEFAULT 0 CHECK (used_count >= 0),
    min_subtotal_minor bigint NOT NULL DEFAULT 0 CHECK (min_subtotal_minor >= 0),
    active             boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'percent' OR value <= 100),
    -- amount coupons need a currency, percent coupons have none
    CHECK ((kind = 'amount') = (currency IS NOT NULL)),
    CHECK (usage_limit IS NULL OR used_count <= usage_limit),
    CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);
CREATE UNIQUE INDEX coupons_seller_code_key ON coupons (
    coalesce(seller_id, '00000000-0000-0000-0000-000000000000'::uuid), upper(code)
);
CREATE INDEX coupons_seller_idx ON coupons (seller_id) WHERE seller_id IS NOT NULL;
CREATE TRIGGER coupons_touch BEFORE UPDATE ON coupons
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- ---------------------------------------------------------------------------
-- Wishlists
-- ---------------------------------------------------------------------------
CREATE TABLE wishlists (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    product_id uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, product_id)
);
CREATE INDEX wishlists_product_idx ON wishlists (product_id);
