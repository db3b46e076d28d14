-- Development / docker-compose only: run once by the postgres image on an empty data
-- directory (/docker-entrypoint-initdb.d). One database per service, each owned by a login
-- role of its own, so a service can never read or write another service's tables
-- (docs: "Ownership and state"). The passwords are DEVELOPMENT secrets, marked "dev-only";
-- a real deployment creates the roles with secrets from its secret store.
--
-- docker-compose.yml builds each service's VZH_<SERVICE>_DATABASE_URL from these names;
-- tests/test_deploy.py checks that every database and role it uses is created here.

CREATE ROLE ingest LOGIN PASSWORD 'dev-only-ingest';
CREATE DATABASE ingest OWNER ingest;
REVOKE ALL ON DATABASE ingest FROM PUBLIC;

CREATE ROLE melding LOGIN PASSWORD 'dev-only-melding';
CREATE DATABASE melding OWNER melding;
REVOKE ALL ON DATABASE melding FROM PUBLIC;

CREATE ROLE swv_aggregate LOGIN PASSWORD 'dev-only-swv-aggregate';
CREATE DATABASE swv_aggregate OWNER swv_aggregate;
REVOKE ALL ON DATABASE swv_aggregate FROM PUBLIC;
