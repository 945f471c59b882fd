-- Deployment acknowledgements: what each gateway reports it serves, so that the
-- Publisher's deployments show per environment how many gateways are live, how many
-- serve a revision and how many failed to apply it ("deployed" never means "written to
-- a table"). One row per gateway node, replaced by each report.
CREATE TABLE gateway_status (
    gateway_id   TEXT     PRIMARY KEY,
    environment  TEXT     NOT NULL,
    sequence     INTEGER   NOT NULL,
    revisions    TEXT     NOT NULL,
    failed       TEXT     NOT NULL,
    reported_at  INTEGER   NOT NULL
);
CREATE INDEX gateway_status_by_environment ON gateway_status (environment, reported_at);
