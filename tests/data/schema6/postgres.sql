--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: anvild_schema; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.anvild_schema (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at double precision NOT NULL
);


--
-- Name: entity_statistics; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.entity_statistics (
    test_id integer NOT NULL,
    space text NOT NULL,
    total_runs integer NOT NULL,
    passed integer NOT NULL,
    failed integer NOT NULL,
    skipped integer NOT NULL,
    errors integer NOT NULL,
    reruns integer NOT NULL,
    passed_on_retry integer NOT NULL,
    failure_rate double precision NOT NULL,
    duration_total double precision NOT NULL,
    duration_count integer NOT NULL,
    avg_duration double precision,
    last_run double precision,
    last_failure double precision,
    last_status text,
    last_outcome text,
    flips integer NOT NULL
);


--
-- Name: execution; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.execution (
    id integer NOT NULL,
    execution_id text NOT NULL,
    project_id integer NOT NULL,
    space text NOT NULL,
    source text NOT NULL,
    started_at double precision,
    finished_at double precision,
    duration double precision,
    exit_code integer,
    state text NOT NULL,
    passed integer NOT NULL,
    failed integer NOT NULL,
    errors integer NOT NULL,
    skipped integer NOT NULL,
    xfailed integer NOT NULL,
    xpassed integer NOT NULL,
    rerun integer NOT NULL,
    git_commit text,
    git_branch text,
    tree_dirty boolean,
    diff_hash text,
    hostname text,
    os text,
    python_version text,
    origin text,
    ci_url text,
    report_path text,
    report_sha256 text NOT NULL,
    metadata text NOT NULL,
    session_id text
);


--
-- Name: execution_history; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.execution_history (
    execution_id integer NOT NULL,
    test_id integer NOT NULL,
    attempt integer NOT NULL,
    "timestamp" double precision,
    status text NOT NULL,
    duration double precision,
    message text,
    message_group bigint
);


--
-- Name: execution_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.execution_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: execution_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.execution_id_seq OWNED BY public.execution.id;


--
-- Name: project; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.project (
    id integer NOT NULL,
    name text NOT NULL,
    root text NOT NULL
);


--
-- Name: project_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.project_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: project_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.project_id_seq OWNED BY public.project.id;


--
-- Name: quarantine; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.quarantine (
    project_id integer NOT NULL,
    entity_id text NOT NULL,
    reason text,
    until text,
    added_at double precision NOT NULL,
    source text NOT NULL
);


--
-- Name: test; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.test (
    id integer NOT NULL,
    project_id integer NOT NULL,
    entity_id text NOT NULL,
    entity_type text NOT NULL,
    file text,
    key text NOT NULL,
    last_traceback text
);


--
-- Name: test_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.test_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: test_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.test_id_seq OWNED BY public.test.id;


--
-- Name: execution id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.execution ALTER COLUMN id SET DEFAULT nextval('public.execution_id_seq'::regclass);


--
-- Name: project id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.project ALTER COLUMN id SET DEFAULT nextval('public.project_id_seq'::regclass);


--
-- Name: test id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.test ALTER COLUMN id SET DEFAULT nextval('public.test_id_seq'::regclass);


--
-- Data for Name: anvild_schema; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.anvild_schema VALUES (1, 'create tables', 1796148801.9494586);
INSERT INTO public.anvild_schema VALUES (2, 'execution session id', 1796148801.972195);
INSERT INTO public.anvild_schema VALUES (3, 'index execution start', 1796148801.9771166);
INSERT INTO public.anvild_schema VALUES (4, 'history attempt as integer', 1796148801.9829278);
INSERT INTO public.anvild_schema VALUES (5, 'quarantine table', 1796148801.9897523);
INSERT INTO public.anvild_schema VALUES (6, 'failure groups', 1796148802.0040097);


--
-- Data for Name: entity_statistics; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.entity_statistics VALUES (10, 'ci', 4, 0, 4, 0, 0, 0, 0, 1, 0.004, 4, 0.001, 1796148769.041121, 1796148769.041121, 'FAILED', 'fail', 0);
INSERT INTO public.entity_statistics VALUES (11, 'ci', 4, 2, 2, 0, 0, 0, 0, 0.5, 0.005, 4, 0.00125, 1796148769.041121, 1796148769.041121, 'FAILED', 'fail', 3);
INSERT INTO public.entity_statistics VALUES (12, 'ci', 4, 3, 1, 0, 0, 0, 0, 0.25, 0.004, 4, 0.001, 1796148769.041121, 1796148764.48771, 'PASSED', 'pass', 2);
INSERT INTO public.entity_statistics VALUES (13, 'ci', 4, 3, 1, 0, 0, 0, 0, 0.25, 0.004, 4, 0.001, 1796148769.041121, 1796148766.755964, 'PASSED', 'pass', 2);
INSERT INTO public.entity_statistics VALUES (14, 'ci', 4, 3, 1, 0, 0, 0, 0, 0.25, 0.004, 4, 0.001, 1796148769.041121, 1796148769.041121, 'FAILED', 'fail', 1);
INSERT INTO public.entity_statistics VALUES (15, 'ci', 4, 4, 0, 0, 0, 0, 0, 0, 0.005, 4, 0.00125, 1796148769.041121, NULL, 'PASSED', 'pass', 0);
INSERT INTO public.entity_statistics VALUES (16, 'ci', 4, 4, 0, 0, 0, 0, 0, 0, 0.004, 4, 0.001, 1796148769.041121, NULL, 'PASSED', 'pass', 0);
INSERT INTO public.entity_statistics VALUES (17, 'ci', 4, 0, 0, 4, 0, 0, 0, 0, 0, 0, NULL, 1796148769.041121, NULL, 'SKIPPED', NULL, 0);
INSERT INTO public.entity_statistics VALUES (1, 'local', 4, 0, 4, 0, 0, 0, 0, 1, 0.004105668000022433, 4, 0.0010264170000056083, 1796148769.0411315, 1796148769.0411315, 'FAILED', 'fail', 0);
INSERT INTO public.entity_statistics VALUES (2, 'local', 4, 2, 2, 0, 0, 0, 0, 0.5, 0.004005993999953716, 4, 0.001001498499988429, 1796148769.0411315, 1796148769.0411315, 'FAILED', 'fail', 3);
INSERT INTO public.entity_statistics VALUES (3, 'local', 4, 3, 1, 0, 0, 0, 0, 0.25, 0.003662369000039689, 4, 0.0009155922500099223, 1796148769.0411315, 1796148764.4877214, 'PASSED', 'pass', 2);
INSERT INTO public.entity_statistics VALUES (4, 'local', 4, 3, 1, 0, 0, 0, 0, 0.25, 0.002751171999932467, 4, 0.0006877929999831167, 1796148769.0411315, 1796148766.7559755, 'PASSED', 'pass', 2);
INSERT INTO public.entity_statistics VALUES (5, 'local', 4, 3, 1, 0, 0, 0, 0, 0.25, 0.0027444999997214836, 4, 0.0006861249999303709, 1796148769.0411315, 1796148769.0411315, 'FAILED', 'fail', 1);
INSERT INTO public.entity_statistics VALUES (6, 'local', 4, 4, 0, 0, 0, 0, 0, 0, 0.004811109000002034, 4, 0.0012027772500005085, 1796148769.0411315, NULL, 'PASSED', 'pass', 0);
INSERT INTO public.entity_statistics VALUES (7, 'local', 4, 4, 0, 0, 0, 3, 3, 0, 0.0018381230000272808, 4, 0.0004595307500068202, 1796148769.0411315, NULL, 'PASSED', 'pass', 0);
INSERT INTO public.entity_statistics VALUES (8, 'local', 4, 0, 0, 4, 0, 0, 0, 0, 0, 0, NULL, 1796148769.0411315, NULL, 'SKIPPED', NULL, 0);
INSERT INTO public.entity_statistics VALUES (9, 'local', 4, 0, 0, 4, 0, 0, 0, 0, 0, 0, NULL, 1796148769.0411315, NULL, 'XFAILED', NULL, 0);
INSERT INTO public.entity_statistics VALUES (18, 'ci', 4, 0, 0, 4, 0, 0, 0, 0, 0, 0, NULL, 1796148769.041121, NULL, 'XFAILED', NULL, 0);


--
-- Data for Name: execution; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.execution VALUES (1, 'local-20261201-181242', 1, 'local', 'pytest-json-report', 1796148762.5765588, 1796148762.6582825, 0.08172369003295898, 1, 'complete', 6, 1, 0, 1, 1, 0, 0, NULL, NULL, NULL, NULL, 'vm', 'Linux-6.18.44-fc-v1045-x86_64-with-glibc2.36', '3.11.7', 'terminal', NULL, '/work/main/tests/data/schema6/run0.json', '2fafd940f2147dfa91e13e62acf656e17584a724a8a5fc2f558e5d72cf5dfded', '{}', NULL);
INSERT INTO public.execution VALUES (2, 'local-20261201-181244', 1, 'local', 'pytest-json-report', 1796148764.4877214, 1796148764.5856667, 0.0979452133178711, 1, 'complete', 4, 3, 0, 1, 1, 0, 1, NULL, NULL, NULL, NULL, 'vm', 'Linux-6.18.44-fc-v1045-x86_64-with-glibc2.36', '3.11.7', 'terminal', NULL, '/work/main/tests/data/schema6/run1.json', '0919ff39d0d8385a59b3a4a05ad9c8c33d6326d67158189db0464d81fa4e0519', '{}', NULL);
INSERT INTO public.execution VALUES (3, 'local-20261201-181246', 1, 'local', 'pytest-json-report', 1796148766.7559755, 1796148766.875537, 0.11956143379211426, 1, 'complete', 5, 2, 0, 1, 1, 0, 1, NULL, NULL, NULL, NULL, 'vm', 'Linux-6.18.44-fc-v1045-x86_64-with-glibc2.36', '3.11.7', 'terminal', NULL, '/work/main/tests/data/schema6/run2.json', '097b35f771f279e069a1abd827a265ad22c94898f92b4a3eef23d869c79bc360', '{}', NULL);
INSERT INTO public.execution VALUES (4, 'local-20261201-181249', 1, 'local', 'pytest-json-report', 1796148769.0411315, 1796148769.1261396, 0.08500814437866211, 1, 'complete', 4, 3, 0, 1, 1, 0, 1, NULL, NULL, NULL, NULL, 'vm', 'Linux-6.18.44-fc-v1045-x86_64-with-glibc2.36', '3.11.7', 'terminal', NULL, '/work/main/tests/data/schema6/run3.json', 'ebe24a3325b879f68fd635380884e84b4bada3b73cff6c43eeb116846595a665', '{}', NULL);
INSERT INTO public.execution VALUES (5, 'ci-20261201-181242', 2, 'ci', 'junit', 1796148762.576543, 1796148762.659543, 0.083, NULL, 'complete', 6, 1, 0, 1, 1, 0, 0, NULL, NULL, NULL, NULL, 'vm', 'Linux-6.18.44-fc-v1045-x86_64-with-glibc2.36', '3.11.7', 'ci', NULL, '/work/main/tests/data/schema6/run0.xml', '6dfc237d8ffde25fc904effa78239d9b3cd609ac1f9e61c1dad297e088692c51', '{}', NULL);
INSERT INTO public.execution VALUES (6, 'ci-20261201-181244', 2, 'ci', 'junit', 1796148764.48771, 1796148764.58671, 0.099, NULL, 'complete', 4, 3, 0, 1, 1, 0, 0, NULL, NULL, NULL, NULL, 'vm', 'Linux-6.18.44-fc-v1045-x86_64-with-glibc2.36', '3.11.7', 'ci', NULL, '/work/main/tests/data/schema6/run1.xml', '8cfa66dcf758c8bf219feb2fca479736af059aa53a550acb402f23dea3e68356', '{}', NULL);
INSERT INTO public.execution VALUES (7, 'ci-20261201-181246', 2, 'ci', 'junit', 1796148766.755964, 1796148766.876964, 0.121, NULL, 'complete', 5, 2, 0, 1, 1, 0, 0, NULL, NULL, NULL, NULL, 'vm', 'Linux-6.18.44-fc-v1045-x86_64-with-glibc2.36', '3.11.7', 'ci', NULL, '/work/main/tests/data/schema6/run2.xml', '431fcc41405f5af6338a7bdd3ef75027fbe9d6208aa5de04ce2003a623428405', '{}', NULL);
INSERT INTO public.execution VALUES (8, 'ci-20261201-181249', 2, 'ci', 'junit', 1796148769.041121, 1796148769.127121, 0.086, NULL, 'complete', 4, 3, 0, 1, 1, 0, 0, NULL, NULL, NULL, NULL, 'vm', 'Linux-6.18.44-fc-v1045-x86_64-with-glibc2.36', '3.11.7', 'ci', NULL, '/work/main/tests/data/schema6/run3.xml', 'e528147c25d1808ce29309c144252f2c2951f93dfa0845cfb5de5ae643e5d07f', '{}', NULL);


--
-- Data for Name: execution_history; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.execution_history VALUES (1, 1, 0, NULL, 'FAILED', 0.0012725119999572598, 'AssertionError: always wrong
assert 1 == 2', 1521266432521198996);
INSERT INTO public.execution_history VALUES (1, 2, 0, NULL, 'PASSED', 0.000775783999927171, NULL, NULL);
INSERT INTO public.execution_history VALUES (1, 3, 0, NULL, 'PASSED', 0.0009356930000308239, NULL, NULL);
INSERT INTO public.execution_history VALUES (1, 4, 0, NULL, 'PASSED', 0.0006313840000302662, NULL, NULL);
INSERT INTO public.execution_history VALUES (1, 5, 0, NULL, 'PASSED', 0.0005654089999325151, NULL, NULL);
INSERT INTO public.execution_history VALUES (1, 6, 0, NULL, 'PASSED', 0.0011011819999566796, NULL, NULL);
INSERT INTO public.execution_history VALUES (1, 7, 0, NULL, 'PASSED', 0.000385230999995656, NULL, NULL);
INSERT INTO public.execution_history VALUES (1, 8, 0, NULL, 'SKIPPED', 0.0004085260000579183, '(''/tmp/s6/proj/tests/test_s.py'', 19, ''Skipped: not here'')', NULL);
INSERT INTO public.execution_history VALUES (1, 9, 0, NULL, 'XFAILED', 0.0006966740000393656, 'assert False', NULL);
INSERT INTO public.execution_history VALUES (2, 1, 0, NULL, 'FAILED', 0.0007976029999667844, 'AssertionError: always wrong
assert 1 == 2', 1521266432521198996);
INSERT INTO public.execution_history VALUES (2, 2, 0, NULL, 'FAILED', 0.0015747590000501077, 'AssertionError: run 1 is odd
assert (1 % 2) == 0', -2859933726640478409);
INSERT INTO public.execution_history VALUES (2, 3, 0, NULL, 'FAILED', 0.0009956739999665842, 'assert 1 != 1', -8210582106168564837);
INSERT INTO public.execution_history VALUES (2, 4, 0, NULL, 'PASSED', 0.0006497359999571017, NULL, NULL);
INSERT INTO public.execution_history VALUES (2, 5, 0, NULL, 'PASSED', 0.000589202999947247, NULL, NULL);
INSERT INTO public.execution_history VALUES (2, 6, 0, NULL, 'PASSED', 0.0011992950000490055, NULL, NULL);
INSERT INTO public.execution_history VALUES (2, 7, 0, NULL, 'RERUN', NULL, NULL, NULL);
INSERT INTO public.execution_history VALUES (2, 7, 1, NULL, 'PASSED', 0.0004945370000086768, NULL, NULL);
INSERT INTO public.execution_history VALUES (2, 8, 0, NULL, 'SKIPPED', 0.0003268919999754871, '(''/tmp/s6/proj/tests/test_s.py'', 19, ''Skipped: not here'')', NULL);
INSERT INTO public.execution_history VALUES (2, 9, 0, NULL, 'XFAILED', 0.0005801570000016909, 'assert False', NULL);
INSERT INTO public.execution_history VALUES (3, 1, 0, NULL, 'FAILED', 0.0013133500000321874, 'AssertionError: always wrong
assert 1 == 2', 1521266432521198996);
INSERT INTO public.execution_history VALUES (3, 2, 0, NULL, 'PASSED', 0.0005986820000316584, NULL, NULL);
INSERT INTO public.execution_history VALUES (3, 3, 0, NULL, 'PASSED', 0.0008567750000452179, NULL, NULL);
INSERT INTO public.execution_history VALUES (3, 4, 0, NULL, 'FAILED', 0.000925692999999228, 'assert 2 != 2', -8210582106168564837);
INSERT INTO public.execution_history VALUES (3, 5, 0, NULL, 'PASSED', 0.0008261679998895488, NULL, NULL);
INSERT INTO public.execution_history VALUES (3, 6, 0, NULL, 'PASSED', 0.0009407630000168865, NULL, NULL);
INSERT INTO public.execution_history VALUES (3, 7, 0, NULL, 'RERUN', NULL, NULL, NULL);
INSERT INTO public.execution_history VALUES (3, 7, 1, NULL, 'PASSED', 0.0005127800000082061, NULL, NULL);
INSERT INTO public.execution_history VALUES (3, 8, 0, NULL, 'SKIPPED', 0.0004167709999478575, '(''/tmp/s6/proj/tests/test_s.py'', 19, ''Skipped: not here'')', NULL);
INSERT INTO public.execution_history VALUES (3, 9, 0, NULL, 'XFAILED', 0.0006584430000202701, 'assert False', NULL);
INSERT INTO public.execution_history VALUES (4, 1, 0, NULL, 'FAILED', 0.0007222030000662016, 'AssertionError: always wrong
assert 1 == 2', 1521266432521198996);
INSERT INTO public.execution_history VALUES (4, 2, 0, NULL, 'FAILED', 0.0010567689999447794, 'AssertionError: run 3 is odd
assert (3 % 2) == 0', -2859933726640478409);
INSERT INTO public.execution_history VALUES (4, 3, 0, NULL, 'PASSED', 0.0008742269999970631, NULL, NULL);
INSERT INTO public.execution_history VALUES (4, 4, 0, NULL, 'PASSED', 0.0005443589999458709, NULL, NULL);
INSERT INTO public.execution_history VALUES (4, 5, 0, NULL, 'FAILED', 0.0007637199999521727, 'assert 3 != 3', -8210582106168564837);
INSERT INTO public.execution_history VALUES (4, 6, 0, NULL, 'PASSED', 0.0015698689999794624, NULL, NULL);
INSERT INTO public.execution_history VALUES (4, 7, 0, NULL, 'RERUN', NULL, NULL, NULL);
INSERT INTO public.execution_history VALUES (4, 7, 1, NULL, 'PASSED', 0.0004455750000147418, NULL, NULL);
INSERT INTO public.execution_history VALUES (4, 8, 0, NULL, 'SKIPPED', 0.0002457510000226648, '(''/tmp/s6/proj/tests/test_s.py'', 19, ''Skipped: not here'')', NULL);
INSERT INTO public.execution_history VALUES (4, 9, 0, NULL, 'XFAILED', 0.0005170599999360093, 'assert False', NULL);
INSERT INTO public.execution_history VALUES (5, 10, 0, NULL, 'FAILED', 0.001, 'AssertionError: always wrong
assert 1 == 2', 1521266432521198996);
INSERT INTO public.execution_history VALUES (5, 11, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (5, 12, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (5, 13, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (5, 14, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (5, 15, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (5, 16, 0, NULL, 'PASSED', 0, NULL, NULL);
INSERT INTO public.execution_history VALUES (5, 17, 0, NULL, 'SKIPPED', 0, 'not here', NULL);
INSERT INTO public.execution_history VALUES (5, 18, 0, NULL, 'XFAILED', 0.001, 'known', NULL);
INSERT INTO public.execution_history VALUES (6, 10, 0, NULL, 'FAILED', 0.001, 'AssertionError: always wrong
assert 1 == 2', 1521266432521198996);
INSERT INTO public.execution_history VALUES (6, 11, 0, NULL, 'FAILED', 0.002, 'AssertionError: run 1 is odd
assert (1 % 2) == 0', -2859933726640478409);
INSERT INTO public.execution_history VALUES (6, 12, 0, NULL, 'FAILED', 0.001, 'assert 1 != 1', -8210582106168564837);
INSERT INTO public.execution_history VALUES (6, 13, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (6, 14, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (6, 15, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (6, 16, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (6, 17, 0, NULL, 'SKIPPED', 0, 'not here', NULL);
INSERT INTO public.execution_history VALUES (6, 18, 0, NULL, 'XFAILED', 0.001, 'known', NULL);
INSERT INTO public.execution_history VALUES (7, 10, 0, NULL, 'FAILED', 0.001, 'AssertionError: always wrong
assert 1 == 2', 1521266432521198996);
INSERT INTO public.execution_history VALUES (7, 11, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (7, 12, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (7, 13, 0, NULL, 'FAILED', 0.001, 'assert 2 != 2', -8210582106168564837);
INSERT INTO public.execution_history VALUES (7, 14, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (7, 15, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (7, 16, 0, NULL, 'PASSED', 0.002, NULL, NULL);
INSERT INTO public.execution_history VALUES (7, 17, 0, NULL, 'SKIPPED', 0, 'not here', NULL);
INSERT INTO public.execution_history VALUES (7, 18, 0, NULL, 'XFAILED', 0.001, 'known', NULL);
INSERT INTO public.execution_history VALUES (8, 10, 0, NULL, 'FAILED', 0.001, 'AssertionError: always wrong
assert 1 == 2', 1521266432521198996);
INSERT INTO public.execution_history VALUES (8, 11, 0, NULL, 'FAILED', 0.001, 'AssertionError: run 3 is odd
assert (3 % 2) == 0', -2859933726640478409);
INSERT INTO public.execution_history VALUES (8, 12, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (8, 13, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (8, 14, 0, NULL, 'FAILED', 0.001, 'assert 3 != 3', -8210582106168564837);
INSERT INTO public.execution_history VALUES (8, 15, 0, NULL, 'PASSED', 0.002, NULL, NULL);
INSERT INTO public.execution_history VALUES (8, 16, 0, NULL, 'PASSED', 0.001, NULL, NULL);
INSERT INTO public.execution_history VALUES (8, 17, 0, NULL, 'SKIPPED', 0, 'not here', NULL);
INSERT INTO public.execution_history VALUES (8, 18, 0, NULL, 'XFAILED', 0.001, 'known', NULL);


--
-- Data for Name: project; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.project VALUES (1, 'alpha', '/schema6/alpha');
INSERT INTO public.project VALUES (2, 'beta', '/schema6/beta');


--
-- Data for Name: quarantine; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: test; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.test VALUES (6, 1, 'tests/test_s.py::test_pass', 'test', 'tests/test_s.py', 'tests.test_s::test_pass', NULL);
INSERT INTO public.test VALUES (7, 1, 'tests/test_s.py::test_rerun', 'test', 'tests/test_s.py', 'tests.test_s::test_rerun', NULL);
INSERT INTO public.test VALUES (8, 1, 'tests/test_s.py::test_skip', 'test', 'tests/test_s.py', 'tests.test_s::test_skip', NULL);
INSERT INTO public.test VALUES (9, 1, 'tests/test_s.py::test_xfail', 'test', 'tests/test_s.py', 'tests.test_s::test_xfail', NULL);
INSERT INTO public.test VALUES (3, 1, 'tests/test_s.py::test_param[1]', 'test', 'tests/test_s.py', 'tests.test_s::test_param[1]', 'n = 1

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_param(n):
>       assert n != RUN
E       assert 1 != 1

tests/test_s.py:31: AssertionError');
INSERT INTO public.test VALUES (4, 1, 'tests/test_s.py::test_param[2]', 'test', 'tests/test_s.py', 'tests.test_s::test_param[2]', 'n = 2

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_param(n):
>       assert n != RUN
E       assert 2 != 2

tests/test_s.py:31: AssertionError');
INSERT INTO public.test VALUES (1, 1, 'tests/test_s.py::test_fail', 'test', 'tests/test_s.py', 'tests.test_s::test_fail', 'def test_fail():
>       assert 1 == 2, "always wrong"
E       AssertionError: always wrong
E       assert 1 == 2

tests/test_s.py:16: AssertionError');
INSERT INTO public.test VALUES (2, 1, 'tests/test_s.py::test_flaky', 'test', 'tests/test_s.py', 'tests.test_s::test_flaky', 'def test_flaky():
>       assert RUN % 2 == 0, f"run {RUN} is odd"
E       AssertionError: run 3 is odd
E       assert (3 % 2) == 0

tests/test_s.py:12: AssertionError');
INSERT INTO public.test VALUES (5, 1, 'tests/test_s.py::test_param[3]', 'test', 'tests/test_s.py', 'tests.test_s::test_param[3]', 'n = 3

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_param(n):
>       assert n != RUN
E       assert 3 != 3

tests/test_s.py:31: AssertionError');
INSERT INTO public.test VALUES (15, 2, 'tests/test_s.py::test_pass', 'test', NULL, 'tests.test_s::test_pass', NULL);
INSERT INTO public.test VALUES (16, 2, 'tests/test_s.py::test_rerun', 'test', NULL, 'tests.test_s::test_rerun', NULL);
INSERT INTO public.test VALUES (18, 2, 'tests/test_s.py::test_xfail', 'test', NULL, 'tests.test_s::test_xfail', NULL);
INSERT INTO public.test VALUES (12, 2, 'tests/test_s.py::test_param[1]', 'test', NULL, 'tests.test_s::test_param[1]', 'n = 1

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_param(n):
>       assert n != RUN
E       assert 1 != 1

tests/test_s.py:31: AssertionError');
INSERT INTO public.test VALUES (13, 2, 'tests/test_s.py::test_param[2]', 'test', NULL, 'tests.test_s::test_param[2]', 'n = 2

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_param(n):
>       assert n != RUN
E       assert 2 != 2

tests/test_s.py:31: AssertionError');
INSERT INTO public.test VALUES (10, 2, 'tests/test_s.py::test_fail', 'test', NULL, 'tests.test_s::test_fail', 'def test_fail():
>       assert 1 == 2, "always wrong"
E       AssertionError: always wrong
E       assert 1 == 2

tests/test_s.py:16: AssertionError');
INSERT INTO public.test VALUES (11, 2, 'tests/test_s.py::test_flaky', 'test', NULL, 'tests.test_s::test_flaky', 'def test_flaky():
>       assert RUN % 2 == 0, f"run {RUN} is odd"
E       AssertionError: run 3 is odd
E       assert (3 % 2) == 0

tests/test_s.py:12: AssertionError');
INSERT INTO public.test VALUES (14, 2, 'tests/test_s.py::test_param[3]', 'test', NULL, 'tests.test_s::test_param[3]', 'n = 3

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_param(n):
>       assert n != RUN
E       assert 3 != 3

tests/test_s.py:31: AssertionError');
INSERT INTO public.test VALUES (17, 2, 'tests/test_s.py::test_skip', 'test', NULL, 'tests.test_s::test_skip', '/tmp/s6/proj/tests/test_s.py:19: not here');


--
-- Name: execution_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.execution_id_seq', 8, true);


--
-- Name: project_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.project_id_seq', 2, true);


--
-- Name: test_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.test_id_seq', 18, true);


--
-- Name: anvild_schema anvild_schema_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.anvild_schema
    ADD CONSTRAINT anvild_schema_pkey PRIMARY KEY (version);


--
-- Name: entity_statistics entity_statistics_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.entity_statistics
    ADD CONSTRAINT entity_statistics_pkey PRIMARY KEY (test_id, space);


--
-- Name: execution_history execution_history_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.execution_history
    ADD CONSTRAINT execution_history_pkey PRIMARY KEY (execution_id, test_id, attempt);


--
-- Name: execution execution_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.execution
    ADD CONSTRAINT execution_pkey PRIMARY KEY (id);


--
-- Name: project project_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.project
    ADD CONSTRAINT project_pkey PRIMARY KEY (id);


--
-- Name: quarantine quarantine_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.quarantine
    ADD CONSTRAINT quarantine_pkey PRIMARY KEY (project_id, entity_id);


--
-- Name: test test_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.test
    ADD CONSTRAINT test_pkey PRIMARY KEY (id);


--
-- Name: execution_execution_id; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX execution_execution_id ON public.execution USING btree (execution_id);


--
-- Name: execution_history_failures; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX execution_history_failures ON public.execution_history USING btree (execution_id, message_group, test_id, status) WHERE (status = ANY (ARRAY['ERROR'::text, 'FAILED'::text]));


--
-- Name: execution_history_test_id_execution_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX execution_history_test_id_execution_id ON public.execution_history USING btree (test_id, execution_id);


--
-- Name: execution_project_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX execution_project_id ON public.execution USING btree (project_id);


--
-- Name: execution_project_id_report_sha256; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX execution_project_id_report_sha256 ON public.execution USING btree (project_id, report_sha256);


--
-- Name: execution_project_id_session_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX execution_project_id_session_id ON public.execution USING btree (project_id, session_id);


--
-- Name: execution_project_space_start; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX execution_project_space_start ON public.execution USING btree (project_id, space, started_at, id);


--
-- Name: execution_space_started_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX execution_space_started_at ON public.execution USING btree (space, started_at);


--
-- Name: project_root; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX project_root ON public.project USING btree (root);


--
-- Name: test_project_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX test_project_id ON public.test USING btree (project_id);


--
-- Name: test_project_id_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX test_project_id_key ON public.test USING btree (project_id, key);


--
-- Name: entity_statistics entity_statistics_test_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.entity_statistics
    ADD CONSTRAINT entity_statistics_test_id_fkey FOREIGN KEY (test_id) REFERENCES public.test(id) ON DELETE CASCADE;


--
-- Name: execution_history execution_history_execution_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.execution_history
    ADD CONSTRAINT execution_history_execution_id_fkey FOREIGN KEY (execution_id) REFERENCES public.execution(id) ON DELETE CASCADE;


--
-- Name: execution_history execution_history_test_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.execution_history
    ADD CONSTRAINT execution_history_test_id_fkey FOREIGN KEY (test_id) REFERENCES public.test(id) ON DELETE CASCADE;


--
-- Name: execution execution_project_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.execution
    ADD CONSTRAINT execution_project_id_fkey FOREIGN KEY (project_id) REFERENCES public.project(id) ON DELETE CASCADE;


--
-- Name: quarantine quarantine_project_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.quarantine
    ADD CONSTRAINT quarantine_project_id_fkey FOREIGN KEY (project_id) REFERENCES public.project(id) ON DELETE CASCADE;


--
-- Name: test test_project_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.test
    ADD CONSTRAINT test_project_id_fkey FOREIGN KEY (project_id) REFERENCES public.project(id) ON DELETE CASCADE;


--
-- PostgreSQL database dump complete
--


