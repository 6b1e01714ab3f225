-- A subset of the Tableau Server repository (workgroup) schema: the tables and columns the
-- repository usage source reads, with the real names and types (tableau-data-dictionary).
CREATE TABLE sites (
    id integer PRIMARY KEY,
    luid uuid NOT NULL,
    name character varying NOT NULL,
    url_namespace character varying
);
CREATE TABLE workbooks (
    id integer PRIMARY KEY,
    luid uuid NOT NULL,
    name character varying NOT NULL,
    site_id integer REFERENCES sites(id),
    is_deleted boolean DEFAULT false
);
CREATE TABLE views (
    id integer PRIMARY KEY,
    luid uuid NOT NULL,
    name character varying NOT NULL,
    workbook_id integer REFERENCES workbooks(id),
    site_id integer REFERENCES sites(id),
    is_deleted boolean DEFAULT false
);
CREATE TABLE views_stats (
    id integer PRIMARY KEY,
    user_id integer,
    view_id integer REFERENCES views(id),
    nviews integer,
    "time" timestamp without time zone,
    site_id integer,
    device_type character varying
);
CREATE TABLE historical_event_types (
    type_id integer PRIMARY KEY,
    name character varying,
    action_type character varying
);
CREATE TABLE hist_views (
    id integer PRIMARY KEY,
    view_id integer,
    name character varying
);
CREATE TABLE historical_events (
    id integer PRIMARY KEY,
    historical_event_type_id integer REFERENCES historical_event_types(type_id),
    created_at timestamp without time zone,
    hist_view_id integer REFERENCES hist_views(id),
    is_failure boolean DEFAULT false
);
