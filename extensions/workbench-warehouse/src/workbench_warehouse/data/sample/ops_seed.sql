-- The operations database of the sample warehouse: the change calendar.
CREATE TABLE change_calendar (
    change_id VARCHAR PRIMARY KEY, effective_at TIMESTAMPTZ, env VARCHAR, kind VARCHAR,
    target VARCHAR, summary VARCHAR, scope_json VARCHAR, rollout_pct DOUBLE, owner VARCHAR);
INSERT INTO change_calendar VALUES
 ('ops-101', '2026-11-03 10:00:00+00', 'prod', 'deploy', 'web-frontend', 'Release 2026.45.1: image lazy loading', '{}', NULL, 'deploy-bot'),
 ('ops-102', '2026-11-05 14:00:00+00', 'prod', 'infra', 'eu-west-1 k8s node pool', 'Scale node pool from 12 to 16 nodes', '{"region": "EU"}', NULL, 'terraform-ci'),
 ('ops-103', '2026-11-07 09:00:00+00', 'staging', 'config', 'checkout.timeout_ms', 'Set checkout.timeout_ms = 10000 in staging', '{}', NULL, 'j.alvarez'),
 ('ops-104', '2026-11-09 11:00:00+00', 'prod', 'flag', 'address_autocomplete_v2', 'Ramp address_autocomplete_v2 to 50% on iOS', '{"platform": "ios"}', 50, 'm.chen'),
 ('ops-105', '2026-11-11 16:00:00+00', 'prod', 'external', 'marketing', 'Newsletter sent to opted-in subscribers', '{}', NULL, 'crm-team'),
 ('ops-106', '2026-11-13 10:00:00+00', 'prod', 'deploy', 'search-svc', 'Deploy search-svc 1.9.0: ranking tweaks', '{}', NULL, 'deploy-bot'),
 ('ops-107', '2026-11-16 17:00:00+00', 'prod', 'config', 'checkout.payment_methods', 'Set checkout.payment_methods = wallets,cards (was wallets,cards,paypal) for US', '{"country": "US"}', NULL, 'p.okafor'),
 ('ops-108', '2026-11-16 16:00:00+00', 'prod', 'config', 'cdn.cache_ttl_s', 'Set cdn.cache_ttl_s = 600 (was 300)', '{}', NULL, 'k.osei'),
 ('ops-109', '2026-11-16 19:00:00+00', 'prod', 'flag', 'dark_mode', 'Enable dark_mode for GB', '{"country": "GB"}', 100, 'l.dubois');
