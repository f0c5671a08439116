"""Build the labelled task corpus for the local classifier: tests/data/tasks_tune.jsonl, tasks_eval.jsonl.

The tasks are hand-written (instructions, questions, multi-sentence asks); pasted material (tracebacks,
logs, diffs, code, tool output) is attached from the library below, long material built deterministically.
The corpus is written once, then split at random with a fixed seed (stratified by task type) into ~60%
tune / ~40% eval. Run: python tests/data/make_corpus.py
"""

from __future__ import annotations

import json
import pathlib
import random
import sys

try:
    from tiercli.taxonomy import LABEL_OF_TASK_TYPE
except ImportError:  # not installed: the source tree next to tests/
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "src"))
    from tiercli.taxonomy import LABEL_OF_TASK_TYPE


def fence(body: str, lang: str = "") -> str:
    return f"```{lang}\n{body.rstrip()}\n```"


# --------------------------------------------------------------------------------------------------
# Tracebacks and errors
# --------------------------------------------------------------------------------------------------

PY_TB_KEYERROR = """Traceback (most recent call last):
  File "/app/src/orders/api.py", line 88, in create_order
    total = compute_total(payload["items"], payload["currency"])
  File "/app/src/orders/pricing.py", line 41, in compute_total
    rate = RATES[currency]
KeyError: 'CHF'"""

PY_TB_NONETYPE = """Traceback (most recent call last):
  File "/usr/local/lib/python3.11/site-packages/flask/app.py", line 1484, in full_dispatch_request
    rv = self.dispatch_request()
  File "/usr/local/lib/python3.11/site-packages/flask/app.py", line 1469, in dispatch_request
    return self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)
  File "/srv/web/app/views/profile.py", line 27, in show_profile
    return render_template("profile.html", user=user, team_id=user.team.id)
AttributeError: 'NoneType' object has no attribute 'id'"""

PY_TB_INTEGRITY = """sqlalchemy.exc.IntegrityError: (psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "users_email_key"
DETAIL:  Key (email)=(ana@example.com) already exists.

[SQL: INSERT INTO users (email, name, created_at) VALUES (%(email)s, %(name)s, %(created_at)s) RETURNING users.id]
[parameters: {'email': 'ana@example.com', 'name': 'Ana', 'created_at': datetime.datetime(2024, 5, 2, 9, 14, 3)}]
(Background on this error at: https://sqlalche.me/e/20/gkpj)"""

PY_TB_IMPORT_CIRC = """Traceback (most recent call last):
  File "/home/dev/proj/manage.py", line 7, in <module>
    from app.jobs import scheduler
  File "/home/dev/proj/app/jobs/__init__.py", line 3, in <module>
    from app.jobs.scheduler import Scheduler
  File "/home/dev/proj/app/jobs/scheduler.py", line 5, in <module>
    from app.models import Job
  File "/home/dev/proj/app/models/__init__.py", line 12, in <module>
    from app.jobs import JOB_STATES
ImportError: cannot import name 'JOB_STATES' from partially initialized module 'app.jobs' (most likely due to a circular import) (/home/dev/proj/app/jobs/__init__.py)"""

PY_TB_MODULENOTFOUND = """Traceback (most recent call last):
  File "/srv/billing/run_worker.py", line 4, in <module>
    from payments.gateway import StripeGateway
ModuleNotFoundError: No module named 'payments.gateway'"""

PY_TB_TYPEERROR = """Traceback (most recent call last):
  File "/app/reports/export.py", line 112, in export_csv
    writer.writerow([row.id, row.name, row.amount / row.quantity])
TypeError: unsupported operand type(s) for /: 'decimal.Decimal' and 'NoneType'"""


def py_tb_recursion(frames: int = 40) -> str:
    lines = ["Traceback (most recent call last):",
             '  File "/opt/tools/refactor_all_modules.py", line 212, in <module>',
             "    main(sys.argv[1:])",
             '  File "/opt/tools/refactor_all_modules.py", line 198, in main',
             "    walk(root, visitor)"]
    for _ in range(frames):
        lines += ['  File "/opt/tools/refactor_all_modules.py", line 77, in walk',
                  "    walk(child, visitor)"]
    lines += ['  File "/opt/tools/refactor_all_modules.py", line 71, in walk',
              "    if visitor.seen(node):",
              "RecursionError: maximum recursion depth exceeded while calling a Python object"]
    return "\n".join(lines)


JS_TB_UNDEFINED = """TypeError: Cannot read properties of undefined (reading 'map')
    at CartItems (webpack-internal:///./src/components/CartItems.jsx:21:28)
    at renderWithHooks (webpack-internal:///./node_modules/react-dom/cjs/react-dom.development.js:16305:18)
    at mountIndeterminateComponent (webpack-internal:///./node_modules/react-dom/cjs/react-dom.development.js:20069:13)
    at beginWork (webpack-internal:///./node_modules/react-dom/cjs/react-dom.development.js:21582:16)
    at HTMLUnknownElement.callCallback (webpack-internal:///./node_modules/react-dom/cjs/react-dom.development.js:4164:14)"""

JAVA_NPE = """java.lang.NullPointerException: Cannot invoke "com.acme.shop.model.Address.getCountry()" because the return value of "com.acme.shop.model.Customer.getShippingAddress()" is null
	at com.acme.shop.orders.OrderService.calculateShipping(OrderService.java:142)
	at com.acme.shop.orders.OrderService.placeOrder(OrderService.java:87)
	at com.acme.shop.api.OrderController.create(OrderController.java:54)
	at java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)
	at org.springframework.web.method.support.InvocableHandlerMethod.doInvoke(InvocableHandlerMethod.java:205)
	at org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)"""

GO_PANIC = """panic: runtime error: index out of range [3] with length 3

goroutine 42 [running]:
github.com/acme/ingest/internal/parser.(*Batch).Field(...)
	/build/internal/parser/batch.go:58
github.com/acme/ingest/internal/parser.ParseLine({0xc0001a4000, 0x2f})
	/build/internal/parser/line.go:31 +0x1e5
github.com/acme/ingest/internal/pipeline.(*Worker).run(0xc000126000)
	/build/internal/pipeline/worker.go:77 +0x13a
created by github.com/acme/ingest/internal/pipeline.Start in goroutine 1
	/build/internal/pipeline/pipeline.go:40 +0x9c
exit status 2"""

RUST_BORROW = """error[E0502]: cannot borrow `self.entries` as mutable because it is also borrowed as immutable
  --> src/cache.rs:47:13
   |
44 |         let oldest = self.entries.iter().min_by_key(|e| e.1.last_used);
   |                      ------------ immutable borrow occurs here
...
47 |             self.entries.remove(&key);
   |             ^^^^^^^^^^^^^^^^^^^^^^^^^ mutable borrow occurs here
48 |         }
49 |         oldest.map(|e| e.0.clone())
   |         ------ immutable borrow later used here

For more information about this error, try `rustc --explain E0502`.
error: could not compile `edge-cache` (lib) due to 1 previous error"""

PYTEST_FAIL = """============================= test session starts ==============================
platform linux -- Python 3.11.7, pytest-8.2.0, pluggy-1.5.0
rootdir: /home/ci/work/api
collected 214 items

tests/test_auth.py ........                                              [  3%]
tests/test_billing.py ....F...                                           [  7%]
tests/test_orders.py ..........F.                                        [ 12%]

=================================== FAILURES ===================================
_________________________ test_refund_partial_amount __________________________

    def test_refund_partial_amount(client, paid_order):
        resp = client.post(f"/orders/{paid_order.id}/refund", json={"amount": "12.50"})
>       assert resp.status_code == 200
E       assert 422 == 200
E        +  where 422 = <Response [422]>.status_code

tests/test_billing.py:88: AssertionError
____________________________ test_list_pagination _____________________________

    def test_list_pagination(client, many_orders):
        resp = client.get("/orders?page=3&per_page=20")
>       assert len(resp.json()["items"]) == 20
E       assert 0 == 20

tests/test_orders.py:141: AssertionError
=========================== short test summary info ============================
FAILED tests/test_billing.py::test_refund_partial_amount - assert 422 == 200
FAILED tests/test_orders.py::test_list_pagination - assert 0 == 20
======================== 2 failed, 212 passed in 9.81s ========================="""

NPM_ERR = """npm ERR! code ERESOLVE
npm ERR! ERESOLVE unable to resolve dependency tree
npm ERR!
npm ERR! While resolving: web-dashboard@2.3.0
npm ERR! Found: react@18.2.0
npm ERR! node_modules/react
npm ERR!   react@"^18.2.0" from the root project
npm ERR!
npm ERR! Could not resolve dependency:
npm ERR! peer react@"^16.8.0 || ^17.0.0" from react-beautiful-dnd@13.1.1
npm ERR! node_modules/react-beautiful-dnd
npm ERR!   react-beautiful-dnd@"^13.1.1" from the root project
npm ERR!
npm ERR! Fix the upstream dependency conflict, or retry
npm ERR! this command with --force or --legacy-peer-deps"""

DOCKER_BUILD_FAIL = """#8 [builder 4/7] RUN pip install --no-cache-dir -r requirements.txt
#8 2.114 Collecting psycopg2==2.9.9
#8 2.301   Downloading psycopg2-2.9.9.tar.gz (384 kB)
#8 3.877   Preparing metadata (setup.py): finished with status 'error'
#8 3.880   error: subprocess-exited-with-error
#8 3.880
#8 3.880   × python setup.py egg_info did not run successfully.
#8 3.880   │ exit code: 1
#8 3.880   ╰─> [23 lines of output]
#8 3.880       Error: pg_config executable not found.
#8 3.880
#8 3.880       pg_config is required to build psycopg2 from source.  Please add the directory
#8 3.880       containing pg_config to the $PATH or specify the full executable path with the
#8 3.880       option:
#8 ERROR: process "/bin/sh -c pip install --no-cache-dir -r requirements.txt" did not complete successfully: exit code: 1"""

CORS_CONSOLE = """Access to fetch at 'https://api.example.com/v2/orders' from origin 'https://app.example.com' has been blocked by CORS policy: Response to preflight request doesn't pass access control check: No 'Access-Control-Allow-Origin' header is present on the requested resource.
orders.ts:44          GET https://api.example.com/v2/orders net::ERR_FAILED 200 (OK)
Uncaught (in promise) TypeError: Failed to fetch
    at fetchOrders (orders.ts:44:22)
    at OrdersPage.tsx:31:5"""

CRASHLOOP = """$ kubectl get pods -n checkout
NAME                              READY   STATUS             RESTARTS        AGE
checkout-api-7d9f8b6c5-2xkqp      0/1     CrashLoopBackOff   7 (2m ago)      14m
checkout-api-7d9f8b6c5-9fj3w      0/1     CrashLoopBackOff   7 (3m ago)      14m
$ kubectl logs checkout-api-7d9f8b6c5-2xkqp -n checkout --previous
{"ts":"2024-06-11T08:02:14Z","level":"info","msg":"loading config","path":"/etc/checkout/config.yaml"}
{"ts":"2024-06-11T08:02:14Z","level":"fatal","msg":"invalid config","error":"redis.url: parse \\"redis//cache:6379\\": invalid URI for request"}"""

MYPY_OUT = """app/models/user.py:34: error: "BaseModel" has no attribute "parse_obj_as"  [attr-defined]
app/api/schemas.py:12: error: Unexpected keyword argument "orm_mode" for "ConfigDict"  [call-arg]
app/api/schemas.py:58: error: Argument 1 to "validator" has incompatible type "str"; expected "FieldValidatorModes"  [arg-type]
app/services/billing.py:91: error: Item "None" of "Optional[Invoice]" has no attribute "total"  [union-attr]
Found 4 errors in 3 files (checked 86 source files)"""

PERMISSION_DENIED = """$ ./scripts/deploy.sh staging
==> building image web:3f9c2a1
==> pushing to registry.internal/web:3f9c2a1
./scripts/deploy.sh: line 41: /usr/local/bin/kubectl-apply-wrapper: Permission denied
==> deploy failed (exit 126)"""

# --------------------------------------------------------------------------------------------------
# Tool output
# --------------------------------------------------------------------------------------------------

FLAKE8_OUT = """src/ingest/reader.py:3:1: F401 'os' imported but unused
src/ingest/reader.py:14:80: E501 line too long (97 > 79 characters)
src/ingest/reader.py:22:5: E303 too many blank lines (3)
src/ingest/reader.py:40:1: W293 blank line contains whitespace
src/ingest/reader.py:51:23: E231 missing whitespace after ','
src/ingest/reader.py:67:1: E302 expected 2 blank lines, found 1"""

RUFF_OUT = """app/cli.py:1:1: I001 [*] Import block is un-sorted or un-formatted
app/cli.py:5:8: F401 [*] `typing.Dict` imported but unused
app/cli.py:44:89: E501 Line too long (104 > 88)
app/cli.py:71:5: F841 [*] Local variable `result` is assigned to but never used
Found 4 errors.
[*] 3 fixable with the `--fix` option."""

ESLINT_OUT = """/home/me/web/src/components/Header.jsx
   3:8   error  'React' is defined but never used                no-unused-vars
  12:21  error  Strings must use singlequote                     quotes
  12:40  error  Missing semicolon                                semi
  27:1   error  Expected indentation of 4 spaces but found 6     indent
  31:15  error  Strings must use singlequote                     quotes

✖ 5 problems (5 errors, 0 warnings)
  4 errors and 0 warnings potentially fixable with the `--fix` option."""

PYLINT_OUT = """************* Module billing.invoice
billing/invoice.py:18:0: C0103: Constant name "default_tax" doesn't conform to UPPER_CASE naming style (invalid-name)
billing/invoice.py:33:4: C0103: Variable name "X" doesn't conform to snake_case naming style (invalid-name)
billing/invoice.py:47:8: C0103: Variable name "TotalAmt" doesn't conform to snake_case naming style (invalid-name)
billing/invoice.py:61:0: C0103: Function name "CalcDiscount" doesn't conform to snake_case naming style (invalid-name)

------------------------------------------------------------------
Your code has been rated at 8.71/10 (previous run: 8.71/10, +0.00)"""

PYDOCSTYLE_OUT = """src/tiercli/pricing.py:1 at module level:
        D100: Missing docstring in public module
src/tiercli/pricing.py:14 in public function `price_of`:
        D103: Missing docstring in public function
src/tiercli/pricing.py:38 in public function `usage_cost`:
        D103: Missing docstring in public function
src/tiercli/pricing.py:61 in public class `PriceTable`:
        D101: Missing docstring in public class"""

COVERAGE_OUT = """Name                        Stmts   Miss  Cover   Missing
---------------------------------------------------------
payments/__init__.py            2      0   100%
payments/refund.py             88     31    65%   42-48, 61-75, 90-97, 130-134
payments/gateway.py           140     12    91%   201-212
---------------------------------------------------------
TOTAL                         230     43    81%"""

PRECOMMIT_OUT = """trim trailing whitespace.................................................Failed
- hook id: trailing-whitespace
- exit code: 1
- files were modified by this hook

Fixing src/app/routes.py
Fixing src/app/templates/base.html

fix end of files.........................................................Failed
- hook id: end-of-file-fixer
- exit code: 1

Fixing docs/setup.md
check yaml...............................................................Passed"""

ISORT_DIFF = """ERROR: /repo/app/views.py Imports are incorrectly sorted and/or formatted.
--- /repo/app/views.py:before
+++ /repo/app/views.py:after
@@ -1,6 +1,7 @@
-from app.models import Order
-import json
 import os
+import json
+
 from flask import Blueprint, request
+
+from app.models import Order"""

YAMLLINT_OUT = """config/deploy.yaml
  12:5      error    wrong indentation: expected 2 but found 4  (indentation)
  18:5      error    wrong indentation: expected 2 but found 4  (indentation)
  27:81     warning  line too long (94 > 80 characters)  (line-length)
  30:1      error    too many blank lines (2 > 1)  (empty-lines)"""

LS_OUT = """$ ls -la services/worker
total 64
drwxr-xr-x  9 dev dev 4096 Mar  3 10:12 .
drwxr-xr-x 12 dev dev 4096 Mar  1 09:40 ..
-rw-r--r--  1 dev dev  512 Feb 27 16:02 Dockerfile
-rw-r--r--  1 dev dev 1208 Feb 27 16:02 README.md
-rw-r--r--  1 dev dev  884 Mar  3 10:12 __main__.py
drwxr-xr-x  2 dev dev 4096 Mar  3 10:12 handlers
drwxr-xr-x  2 dev dev 4096 Feb 27 16:02 jobs
-rw-r--r--  1 dev dev 2310 Mar  1 09:40 app.py
-rw-r--r--  1 dev dev  301 Feb 20 11:11 celeryconfig.py
-rw-r--r--  1 dev dev  148 Feb 20 11:11 requirements.txt
drwxr-xr-x  3 dev dev 4096 Feb 27 16:02 tests"""

TREE_OUT = """.
├── api
│   ├── __init__.py
│   ├── deps.py
│   ├── routes
│   │   ├── auth.py
│   │   ├── orders.py
│   │   └── users.py
│   └── schemas.py
├── core
│   ├── config.py
│   ├── security.py
│   └── events.py
├── db
│   ├── base.py
│   ├── session.py
│   └── migrations
├── services
│   ├── billing.py
│   ├── notifications.py
│   └── inventory.py
└── main.py"""

GIT_STATUS = """On branch feature/invoice-export
Your branch is ahead of 'origin/feature/invoice-export' by 2 commits.

Changes not staged for commit:
  (use "git add <file>..." to update what will be committed)
	modified:   billing/export.py
	modified:   billing/tests/test_export.py

Untracked files:
  (use "git add <file>..." to include in what will be committed)
	billing/migrations/0042_invoice_export_format.py
	notes.txt"""

MONOLITH_TREE = """monolith/
  accounts/        (users, auth, sso, permissions)       18k LOC
  catalog/         (products, pricing, search indexing)  22k LOC
  orders/          (cart, checkout, order lifecycle)     31k LOC
  payments/        (stripe, invoices, refunds)           14k LOC
  shipping/        (carriers, labels, tracking)           9k LOC
  notifications/   (email, sms, push)                     6k LOC
  reporting/       (nightly jobs, exports)               11k LOC
  shared/          (models, utils, db session)           25k LOC  <- imported by everything"""

GREP_SEND = "\n".join(
    f"{path}:{line}:    send({args})"
    for path, line, args in [
        ("services/notify/email.py", 41, "msg, 3"), ("services/notify/sms.py", 22, "payload, retries"),
        ("services/orders/events.py", 117, "event, 5"), ("services/orders/events.py", 140, "event, 5"),
        ("services/billing/invoices.py", 88, "invoice_msg, 2"), ("services/billing/dunning.py", 51, "m, 3"),
        ("services/users/signup.py", 63, "welcome, 1"), ("services/users/reset.py", 30, "reset_msg, 3"),
        ("libs/queue/publisher.py", 12, "item, self.retries"), ("libs/queue/relay.py", 77, "batch, 0"),
        ("jobs/nightly/report.py", 140, "report, 2"), ("jobs/nightly/cleanup.py", 19, "notice, 1"),
        ("services/shipping/labels.py", 205, "label_evt, 4"), ("services/shipping/track.py", 96, "upd, 4"),
        ("tools/replay_events.py", 54, "e, args.retries"), ("services/catalog/sync.py", 233, "chg, 3"),
    ]
) + "\n... (64 more matches in 31 files)"

# --------------------------------------------------------------------------------------------------
# Code
# --------------------------------------------------------------------------------------------------

PY_RATE_LIMITER = '''class RateLimiter:
    def __init__(self, rate, per, clock=time.monotonic):
        self.rate = rate
        self.per = per
        self.clock = clock
        self.allowance = rate
        self.last = clock()

    def allow(self, cost=1):
        now = self.clock()
        elapsed = now - self.last
        self.last = now
        self.allowance = min(self.rate, self.allowance + elapsed * (self.rate / self.per))
        if self.allowance < cost:
            return False
        self.allowance -= cost
        return True

    def reset(self):
        self.allowance = self.rate
        self.last = self.clock()'''

PY_PARSE_DURATION = '''_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

def parse_duration(text):
    total = 0
    num = ""
    for ch in text.strip().lower():
        if ch.isdigit():
            num += ch
        elif ch in _UNITS:
            if not num:
                raise ValueError(f"missing number before {ch!r}")
            total += int(num) * _UNITS[ch]
            num = ""
        elif ch.isspace():
            continue
        else:
            raise ValueError(f"bad unit {ch!r}")
    if num:
        raise ValueError("trailing number without unit")
    return total'''

PY_COMPUTE_TOTAL = '''def compute_total(items, discount=None):
    subtotal = 0
    for item in items:
        if item.get("qty"):
            subtotal += item["price"] * item["qty"]
    if discount:
        subtotal = subtotal - discount
        return subtotal
    if subtotal > 0:
        return round(subtotal, 2)'''

PY_UGLY = '''import sys,os
def load(path,encoding = 'utf-8',strict=False) :
  with open(path,encoding=encoding) as f :
      data=f.read()
  if strict==True :
        if not data : raise ValueError( "empty file: %s"%path )
  lines=[l.strip() for l in data.splitlines() if l.strip()!='' ]
  return {'path':path,'lines':lines,'count':len( lines )}'''

PY_ORDER_REPO = '''class OrderRepository:
    def __init__(self, session):
        self.session = session

    def get(self, order_id):
        return self.session.get(Order, order_id)

    def list_for_customer(self, customer_id, limit=50, offset=0):
        stmt = (select(Order).where(Order.customer_id == customer_id)
                .order_by(Order.created_at.desc()).limit(limit).offset(offset))
        return list(self.session.scalars(stmt))

    def add(self, order):
        self.session.add(order)
        self.session.flush()
        return order

    def mark_shipped(self, order_id, tracking_code):
        order = self.get(order_id)
        order.status = "shipped"
        order.tracking_code = tracking_code
        order.shipped_at = datetime.now(timezone.utc)
        return order'''

PY_SLEEP = '''def wait_for_replica(conn, lsn):
    for attempt in range(10):
        if conn.execute("select pg_last_wal_replay_lsn() >= %s", (lsn,)).scalar():
            return True
        time.sleep(2)
    return False'''

PY_RETRY = '''def retry(times=3, exceptions=(ConnectionError,)):
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for i in range(times):
                try:
                    return fn(*args, **kwargs)
                except exceptions:
                    if i == times - 1:
                        raise
                    time.sleep(2 ** i)
        return wrapper
    return deco

@retry(times=5)
def fetch(url):
    return requests.get(url, timeout=5).json()'''

PY_AUTHZ = '''def can_edit(user, document):
    if user.role == "admin":
        return True
    if document.owner_id == user.id:
        return True
    if document.team_id in user.team_ids and not document.locked:
        return True
    return False

@app.route("/documents/<int:doc_id>", methods=["PUT"])
@login_required
def update_document(doc_id):
    doc = Document.query.get_or_404(doc_id)
    if not can_edit(current_user, doc):
        abort(403)
    doc.body = request.json["body"]
    db.session.commit()
    return jsonify(doc.to_dict())'''

PY_SQL_INJECTION = '''@app.get("/search")
def search_products():
    q = request.args.get("q", "")
    sort = request.args.get("sort", "name")
    rows = db.execute(
        f"SELECT id, name, price FROM products WHERE name ILIKE '%{q}%' ORDER BY {sort} LIMIT 50"
    ).fetchall()
    return jsonify([dict(r) for r in rows])'''

PY_ASYNC_LOCKS = '''class ConnectionPool:
    def __init__(self, size):
        self._lock = asyncio.Lock()
        self._free = asyncio.Queue()
        self._size = size

    async def acquire(self):
        async with self._lock:
            if self._free.empty() and self._created < self._size:
                self._created += 1
                return await self._connect()
            return await self._free.get()

    async def release(self, conn):
        async with self._lock:
            await self._free.put(conn)'''

PY_QUADRATIC = '''def find_matches(orders, payments):
    """Pair each payment with the order it most likely belongs to."""
    matches = []
    for p in payments:
        best, best_score = None, 0
        for o in orders:
            if o.customer_id != p.customer_id:
                continue
            score = similarity(o.reference, p.memo) - abs(o.amount - p.amount) / max(o.amount, 1)
            if score > best_score:
                best, best_score = o, score
        if best is not None:
            matches.append((p.id, best.id))
            orders.remove(best)
    return matches'''

PY_CUBIC = '''def best_window(prices, k):
    n = len(prices)
    best = None
    for i in range(n):
        for j in range(i + k, n + 1):
            window = prices[i:j]
            spread = max(window) - min(window)
            avg = sum(window) / len(window)
            score = avg - spread
            if best is None or score > best[0]:
                best = (score, i, j)
    return best'''

PY_HEAP_SCHEDULE = '''def schedule_jobs(jobs, workers):
    heap = [(0, w) for w in range(workers)]
    heapq.heapify(heap)
    plan = {}
    for job in sorted(jobs, key=lambda j: -j.cost):
        load, w = heapq.heappop(heap)
        plan[job.id] = w
        heapq.heappush(heap, (load + job.cost, w))
    return plan'''

PY_LRU = '''class LRUCache:
    def __init__(self, capacity):
        self.capacity = capacity
        self.data = OrderedDict()

    def get(self, key, default=None):
        if key not in self.data:
            return default
        self.data.move_to_end(key)
        return self.data[key]

    def put(self, key, value):
        self.data[key] = value
        self.data.move_to_end(key)
        if len(self.data) > self.capacity:
            self.data.popitem(last=False)'''

PY_BINSEARCH = '''def bisect_left(a, x):
    lo, hi = 0, len(a)
    while lo < hi:
        mid = (lo + hi) / 2
        if a[mid] < x:
            lo = mid
        else:
            hi = mid - 1
    return lo'''

PY_TODO_FN = '''def export_invoices(invoices, fmt="csv"):
    if fmt == "csv":
        return _to_csv(invoices)
    # TODO: support fmt="xlsx" using openpyxl, one sheet per month
    raise ValueError(f"unsupported format {fmt}")'''

PY_NESTED = '''def process(order, user):
    if order is not None:
        if order.status == "paid":
            if user.is_active:
                if not order.shipped:
                    ship(order)
                    return True
                else:
                    log.info("already shipped")
            else:
                log.warning("inactive user")
        else:
            log.info("not paid")
    return False'''

PY_REGEX = r'''EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z]{2,}$")

def is_valid_email(s):
    return bool(EMAIL_RE.match(s))'''

PY_MAGIC = '''float Q_rsqrt(float number)
{
    long i;
    float x2, y;
    const float threehalfs = 1.5F;
    x2 = number * 0.5F;
    y  = number;
    i  = * ( long * ) &y;
    i  = 0x5f3759df - ( i >> 1 );
    y  = * ( float * ) &i;
    y  = y * ( threehalfs - ( x2 * y * y ) );
    return y;
}'''

PY_COMMENTS_TO_DOC = '''# Loads the model weights from disk.
# path: where the .safetensors file lives
# device: "cpu" or "cuda"
# returns the model in eval mode
# raises FileNotFoundError if the path is wrong
def load_model(path, device="cpu"):
    weights = safetensors.torch.load_file(path, device=device)
    model = Net()
    model.load_state_dict(weights)
    return model.eval()'''

PY_COMMENTED_OUT = '''def sync_inventory(store):
    items = fetch_remote(store)
    # old_items = fetch_remote_v1(store)
    # for it in old_items:
    #     if it.sku.startswith("X"):
    #         continue
    #     upsert(it)
    for it in items:
        upsert(it)
    # print("synced", len(items))
    # metrics.incr("sync.v1")
    return len(items)'''

PY_PERCENT = '''def describe(user, n):
    log.info("user %s has %d orders" % (user.name, n))
    return "Hello %s, you have %d new messages (%.1f%% read)" % (user.first_name, n, user.read_ratio * 100)'''

PY_CLI_LIST = '''@app.command("list")
def list_cmd(status: str = typer.Option(None), limit: int = 20):
    rows = store.list_jobs(status=status, limit=limit)
    table = Table("id", "status", "created")
    for r in rows:
        table.add_row(str(r.id), r.status, r.created.isoformat())
    console.print(table)'''

PY_PRODUCTS_VIEW = '''@router.get("/products")
def list_products(db: Session = Depends(get_db)):
    products = db.query(Product).filter(Product.active.is_(True)).order_by(Product.name).all()
    return [ProductOut.from_orm(p) for p in products]'''

PY_EXTRACT = '''def handle_upload(request):
    f = request.files["file"]
    name = secure_filename(f.filename)
    ext = name.rsplit(".", 1)[-1].lower()
    if ext not in {"png", "jpg", "jpeg", "gif"}:
        return {"error": "bad type"}, 400
    data = f.read()
    if len(data) > 5 * 1024 * 1024:
        return {"error": "too big"}, 413
    img = Image.open(io.BytesIO(data))
    img.thumbnail((256, 256))
    out = io.BytesIO()
    img.save(out, format="PNG")
    key = f"avatars/{request.user.id}/{uuid4()}.png"
    s3.put_object(Bucket=BUCKET, Key=key, Body=out.getvalue())
    request.user.avatar_key = key
    db.session.commit()
    return {"key": key}, 201'''

PY_SLUGIFY = '''def slugify(s):
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    s = re.sub(r"[^\\w\\s-]", "", s).strip().lower()
    return re.sub(r"[-\\s]+", "-", s)'''

PY_DOCSTRING_WRONG = '''def to_snake_case(name):
    """Convert a CamelCase name to snake_case.

    >>> to_snake_case("camelCase")
    'camelCase'
    """
    s1 = re.sub("(.)([A-Z][a-z]+)", r"\\1_\\2", name)
    return re.sub("([a-z0-9])([A-Z])", r"\\1_\\2", s1).lower()'''

PY_FLOAT_EQ = '''def is_paid_in_full(invoice):
    paid = sum(p.amount for p in invoice.payments)
    return paid == invoice.total * (1 + invoice.tax_rate)'''

PY_RESOURCE_LEAK = '''def read_all(paths):
    out = []
    for p in paths:
        f = open(p)
        out.append(json.load(f))
    conn = sqlite3.connect("cache.db")
    conn.execute("insert into runs(n) values (?)", (len(out),))
    conn.commit()
    return out'''

TS_UTILS = '''export function formatPrice(cents: number, currency = "EUR"): string {
  return new Intl.NumberFormat("de-DE", { style: "currency", currency }).format(cents / 100);
}

export function groupBy<T, K extends string>(items: T[], key: (t: T) => K): Record<K, T[]> {
  return items.reduce((acc, it) => {
    const k = key(it);
    (acc[k] ||= []).push(it);
    return acc;
  }, {} as Record<K, T[]>);
}

export async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, rej) => { t = setTimeout(() => rej(new Error("timeout")), ms); });
  try { return await Promise.race([p, timeout]); } finally { clearTimeout(t!); }
}'''

TS_CART_REDUCER = '''export function cartReducer(state: CartState, action: CartAction): CartState {
  switch (action.type) {
    case "add": {
      const existing = state.items.find(i => i.sku === action.sku);
      if (existing) {
        return { ...state, items: state.items.map(i => i.sku === action.sku ? { ...i, qty: i.qty + 1 } : i) };
      }
      return { ...state, items: [...state.items, { sku: action.sku, qty: 1, price: action.price }] };
    }
    case "remove":
      return { ...state, items: state.items.filter(i => i.sku !== action.sku) };
    case "clear":
      return { ...state, items: [] };
    default:
      return state;
  }
}'''

TS_EFFECT_LOOP = '''function Orders({ customerId }) {
  const [orders, setOrders] = useState([]);
  const [filters, setFilters] = useState({ status: "all" });

  useEffect(() => {
    fetch(`/api/customers/${customerId}/orders?status=${filters.status}`)
      .then(r => r.json())
      .then(data => {
        setOrders(data.items);
        setFilters({ ...filters });
      });
  }, [customerId, filters]);

  return <OrderTable orders={orders} />;
}'''

TS_CLASS_COMPONENT = '''class Counter extends React.Component {
  constructor(props) {
    super(props);
    this.state = { count: props.initial || 0 };
    this.increment = this.increment.bind(this);
  }
  componentDidMount() {
    document.title = `Count: ${this.state.count}`;
  }
  componentDidUpdate() {
    document.title = `Count: ${this.state.count}`;
  }
  increment() {
    this.setState({ count: this.state.count + 1 });
  }
  render() {
    return <button onClick={this.increment}>{this.state.count}</button>;
  }
}'''

TS_RERENDER = '''export function ProductList({ products, onSelect }) {
  const sorted = products.sort((a, b) => a.price - b.price);
  const style = { display: "grid", gap: 8 };
  return (
    <div style={style}>
      {sorted.map((p, i) => (
        <ProductCard key={i} product={p} onClick={() => onSelect(p.id)} />
      ))}
    </div>
  );
}'''

JS_VAR = '''var express = require('express');
var router = express.Router();
var db = require('../db');

router.get('/:id', function (req, res) {
  var id = req.params.id;
  db.findUser(id, function (err, user) {
    if (err) return res.status(500).send(err.message);
    var out = { id: user.id, name: user.name };
    res.json(out);
  });
});

module.exports = router;'''

GO_PARSE = '''func ParseLine(line string) (Record, error) {
	parts := strings.Split(line, "|")
	if len(parts) < 3 {
		return Record{}, fmt.Errorf("short line: %q", line)
	}
	ts, err := time.Parse(time.RFC3339, parts[0])
	if err != nil {
		return Record{}, err
	}
	return Record{Time: ts, Level: parts[1], Msg: parts[2], Extra: parts[3]}, nil
}'''

GO_UNFORMATTED = '''package store
import ("context";"database/sql"
"fmt")
type Store struct{db *sql.DB
timeout int}
func New(db *sql.DB)*Store{return &Store{db:db,timeout:5}}
func (s *Store) Count(ctx context.Context,table string)(int,error){
var n int
err:=s.db.QueryRowContext(ctx,fmt.Sprintf("select count(*) from %s",table)).Scan(&n)
return n,err}'''

GO_STRUCT = '''type Config struct {
	ListenAddr   string        `yaml:"listen_addr"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	MaxBodyBytes int64         `yaml:"max_body_bytes"`
	TrustedCIDRs []string      `yaml:"trusted_cidrs"`
	LogLevel     string        `yaml:"log_level"`
}'''

GO_HANDLER = '''func (h *Handler) GetOrder(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		http.Error(w, "bad id", http.StatusBadRequest)
		return
	}
	o, err := h.store.Order(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, "internal", http.StatusInternalServerError)
		return
	}
	json.NewEncoder(w).Encode(o)
}'''

GO_EXPORTED = '''package ratelimit

type Limiter struct {
	mu     sync.Mutex
	tokens float64
	max    float64
	refill float64
	last   time.Time
}

func New(max, perSecond float64) *Limiter {
	return &Limiter{tokens: max, max: max, refill: perSecond, last: time.Now()}
}

func (l *Limiter) Allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.tokens = math.Min(l.max, l.tokens+now.Sub(l.last).Seconds()*l.refill)
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}'''

RUST_LIB = '''pub struct Ring<T> {
    buf: Vec<Option<T>>,
    head: usize,
    len: usize,
}

impl<T> Ring<T> {
    pub fn with_capacity(cap: usize) -> Self {
        Ring { buf: (0..cap).map(|_| None).collect(), head: 0, len: 0 }
    }

    pub fn push(&mut self, v: T) -> Option<T> {
        let idx = (self.head + self.len) % self.buf.len();
        if self.len == self.buf.len() {
            let old = self.buf[self.head].replace(v);
            self.head = (self.head + 1) % self.buf.len();
            return old;
        }
        self.buf[idx] = Some(v);
        self.len += 1;
        None
    }

    pub fn len(&self) -> usize { self.len }
}'''

RUST_UNSAFE = '''pub fn as_bytes<T: Copy>(v: &[T]) -> &[u8] {
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len() * std::mem::size_of::<T>()) }
}

pub fn from_bytes<T: Copy>(b: &[u8]) -> &[T] {
    unsafe { std::slice::from_raw_parts(b.as_ptr() as *const T, b.len() / std::mem::size_of::<T>()) }
}'''

RUST_UNFORMATTED = '''fn main(){let args:Vec<String>=std::env::args().collect();
if args.len()<2{eprintln!("usage: {} FILE",args[0]);std::process::exit(1)}
let text=std::fs::read_to_string(&args[1]).expect("read");
let n=text.lines().filter(|l|!l.trim().is_empty()).count();println!("{}",n)}'''

JAVA_SERVICE = '''public class PaymentService {
    private final PaymentGateway gateway;
    private final PaymentRepository repo;

    public PaymentService(PaymentGateway gateway, PaymentRepository repo) {
        this.gateway = gateway;
        this.repo = repo;
    }

    public Payment charge(Customer customer, BigDecimal amount, String currency) {
        Charge charge = gateway.charge(customer.getToken(), amount, currency);
        Payment p = new Payment(customer.getId(), amount, currency, charge.getId());
        return repo.save(p);
    }

    public Refund refund(long paymentId, BigDecimal amount) {
        Payment p = repo.findById(paymentId).orElseThrow();
        Refund r = gateway.refund(p.getChargeId(), amount);
        p.addRefund(r);
        repo.save(p);
        return r;
    }
}'''

SQL_DUPES = '''SELECT c.id, c.name, o.id AS order_id, o.total
FROM customers c
JOIN orders o ON o.customer_id = c.id
JOIN order_items oi ON oi.order_id = o.id
WHERE o.created_at >= now() - interval '30 days'
ORDER BY o.total DESC;'''

SQL_ONELINER = ("select u.id,u.email,count(o.id) as n_orders,sum(o.total) as revenue from users u left join orders o "
                "on o.user_id=u.id and o.status in ('paid','shipped') where u.created_at>'2024-01-01' and u.deleted_at "
                "is null group by u.id,u.email having count(o.id)>3 order by revenue desc limit 100;")

SQL_CTE = '''WITH monthly AS (
  SELECT date_trunc('month', paid_at) AS m, customer_id, sum(amount) AS amt
  FROM payments WHERE status = 'succeeded' GROUP BY 1, 2
), ranked AS (
  SELECT m, customer_id, amt, rank() OVER (PARTITION BY m ORDER BY amt DESC) AS r FROM monthly
)
SELECT m, customer_id, amt FROM ranked WHERE r <= 10 ORDER BY m, r;'''

SQL_MIGRATION = '''BEGIN;
ALTER TABLE users ADD COLUMN account_id bigint;
UPDATE users SET account_id = legacy_accounts.id FROM legacy_accounts WHERE legacy_accounts.email = users.email;
ALTER TABLE users ALTER COLUMN account_id SET NOT NULL;
CREATE INDEX users_account_id_idx ON users (account_id);
ALTER TABLE users DROP COLUMN legacy_account_ref;
COMMIT;'''

SQL_SLOW = '''SELECT *
FROM events e
WHERE lower(e.payload->>'user_email') = lower($1)
  AND e.created_at::date BETWEEN $2 AND $3
ORDER BY e.created_at DESC
OFFSET $4 LIMIT 50;'''

YAML_BAD_INDENT = '''services:
    web:
        image: ghcr.io/acme/web:latest
        ports:
        - "8080:8080"
        environment:
          - DATABASE_URL=postgres://app@db/app
          - REDIS_URL=redis://cache:6379/0
        depends_on: [db, cache]
    db:
      image: postgres:16
      volumes:
          - pgdata:/var/lib/postgresql/data
    cache:
        image: redis:7
volumes:
  pgdata: {}'''

COMPOSE_YAML = '''services:
  api:
    build: ./api
    env_file: [.env, .env.api]
    depends_on: [db, redis]
  worker:
    build: ./worker
    env_file: [.env, .env.worker]
    command: celery -A worker.app worker -l info
  scheduler:
    build: ./worker
    env_file: .env.scheduler
    command: celery -A worker.app beat
  redis:
    image: redis:7-alpine
  db:
    image: postgres:16'''

K8S_MANIFEST = '''apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout-api
spec:
  replicas: 1
  selector:
    matchLabels: {app: checkout-api}
  template:
    metadata:
      labels: {app: checkout-api}
    spec:
      containers:
        - name: api
          image: registry.internal/checkout-api:latest
          ports: [{containerPort: 8080}]
          env:
            - name: DB_PASSWORD
              value: "s3cr3t-prod"'''

DOCKERFILE = '''FROM python:3.11
WORKDIR /app
COPY . .
RUN pip install -r requirements.txt
RUN apt-get update && apt-get install -y curl vim build-essential
ENV DJANGO_SETTINGS_MODULE=shop.settings.prod
EXPOSE 8000
CMD python manage.py migrate && gunicorn shop.wsgi -b 0.0.0.0:8000 --workers 8'''

BASH_SCRIPT = '''#!/bin/bash
for f in $(ls $SRC_DIR/*.csv); do
  name=$(basename $f .csv)
  gzip -c $f > $OUT_DIR/$name.csv.gz
  aws s3 cp $OUT_DIR/$name.csv.gz s3://$BUCKET/exports/$name.csv.gz
  rm $f
done'''

HCL_MODULE = '''variable "name" {}
variable "cidr_block" { default = "10.0.0.0/16" }
variable "azs" { type = list(string) }
variable "enable_nat" { default = true }

resource "aws_vpc" "this" {
  cidr_block           = var.cidr_block
  enable_dns_hostnames = true
  tags = { Name = var.name }
}'''

TF_PLAN = '''Terraform will perform the following actions:

  # aws_db_instance.main must be replaced
-/+ resource "aws_db_instance" "main" {
      ~ engine_version          = "14.10" -> "16.2" # forces replacement
      ~ id                      = "prod-main" -> (known after apply)
        instance_class          = "db.r6g.xlarge"
      ~ storage_encrypted       = false -> true # forces replacement
        # (22 unchanged attributes hidden)
    }

  # aws_security_group_rule.db_ingress will be created
  + resource "aws_security_group_rule" "db_ingress" {
      + cidr_blocks = ["0.0.0.0/0"]
      + from_port   = 5432
      + to_port     = 5432
      + type        = "ingress"
    }

Plan: 2 to add, 0 to change, 1 to destroy.'''

JSON_MINI = ('{"id":"ord_9f2","customer":{"id":17,"name":"Ana Souza","email":"ana@example.com"},"items":[{"sku":"TSHIRT-M",'
             '"qty":2,"price":1999},{"sku":"MUG","qty":1,"price":899}],"shipping":{"method":"dhl_express","address":'
             '{"city":"Porto","country":"PT"}},"status":"paid","createdAt":"2024-05-02T09:14:03Z"}')

JSON_BROKEN = """{
  'name': 'tiercli',
  'tiers': ['tier1', 'tier2', 'tier3',],
  'default_tier': 'tier2',
  'budget': {'daily_usd': 10, 'on_exceed': 'refuse',},
}"""

JSON_CAMEL = """{
  "userId": 42,
  "firstName": "Jo",
  "lastName": "Park",
  "emailVerified": true,
  "lastLoginAt": "2024-06-01T10:00:00Z",
  "billingAddress": {"streetName": "Rua Nova", "postalCode": "4000-123"}
}"""

CSV_SAMPLE = """region,q1,q2,q3,q4
north,1200,1350,1410,1600
south,980,1010,1105,1230
east,1500,1480,1620,1755
west,700,760,810,905"""

XML_CONFIG = """<config>
  <server port="8080" host="0.0.0.0"/>
  <database url="postgres://db/app" pool="10"/>
  <features>
    <feature name="new_checkout" enabled="true"/>
    <feature name="beta_search" enabled="false"/>
  </features>
</config>"""

MD_TABLE = """| tier | models | tasks |
|---|---|---|
| tier1 |haiku, gpt-5-mini| lookups, docstrings,reformatting |
|tier2| sonnet , gpt-5 |bug fixes, features , reviews|
| tier3 | opus| architecture,cross-codebase refactors , novel algorithms |"""

ARCH_ASCII = """+-----------+      +-------------+     +----------+
| web app |--->| api gateway |---->| orders svc |
+-----------+      +-------------+     +----------+
       |                  |                   |
  +--------+        +-----------+    +-----------+
 | cdn  |      | auth svc |       | postgres  |
  +--------+        +-----------+    +-----------+"""

ANSI_OUT = ("\x1b[32m✓\x1b[0m build finished in 3.2s\n\x1b[33mwarn\x1b[0m  3 deprecated packages\n"
            "\x1b[31m✗\x1b[0m lint: 2 errors\n\x1b[36minfo\x1b[0m  artifacts written to dist/")

ONE_LINE_TRACE = ('Traceback (most recent call last):   File "/app/worker.py", line 52, in run     job.execute()   '
                  'File "/app/jobs/sync.py", line 19, in execute     self.client.push(batch)   File '
                  '"/app/clients/crm.py", line 88, in push     resp.raise_for_status() requests.exceptions.HTTPError: '
                  '429 Client Error: Too Many Requests for url: https://crm.example.com/api/v3/contacts/batch')

REQUIREMENTS_UNSORTED = """requests==2.32.3
pydantic==2.7.1
SQLAlchemy==2.0.30
alembic==1.13.1
boto3==1.34.100
Flask==3.0.3
celery==5.4.0
gunicorn==22.0.0"""

OPENAPI_SNIPPET = """paths:
  /v2/orders/{orderId}/items:
    post:
      summary: Add an item to an order
      parameters:
        - name: orderId
          in: path
          required: true
          schema: {type: string}
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                sku: {type: string}
                qty: {type: integer}
      responses:
        '200': {description: the updated order}"""

CI_YAML_DIFF = """--- a/.github/workflows/ci.yml
+++ b/.github/workflows/ci.yml
@@ -10,14 +10,22 @@ jobs:
   test:
-    runs-on: ubuntu-latest
+    runs-on: ${{ matrix.os }}
+    strategy:
+      matrix:
+        os: [ubuntu-latest, macos-latest]
+        python: ["3.11", "3.12"]
     steps:
       - uses: actions/checkout@v4
-      - uses: actions/setup-python@v5
-        with: {python-version: "3.11"}
+      - uses: actions/setup-python@v5
+        with: {python-version: "${{ matrix.python }}"}
+      - run: pip install -r requirements/test.txt
+        env:
+          PIP_INDEX_URL: https://${{ secrets.PYPI_TOKEN }}@pypi.internal/simple
       - run: pytest -q"""

# --------------------------------------------------------------------------------------------------
# Diffs
# --------------------------------------------------------------------------------------------------

DIFF_LOGIN_FIX = """diff --git a/app/auth/views.py b/app/auth/views.py
index 3f2a1c9..8b7e0d2 100644
--- a/app/auth/views.py
+++ b/app/auth/views.py
@@ -41,12 +41,15 @@ def login():
     form = LoginForm()
     if form.validate_on_submit():
-        user = User.query.filter_by(email=form.email.data).first()
-        if user and user.password == form.password.data:
+        email = form.email.data.strip().lower()
+        user = User.query.filter_by(email=email).first()
+        if user and check_password_hash(user.password_hash, form.password.data):
             login_user(user, remember=form.remember.data)
-            return redirect(request.args.get("next") or url_for("main.index"))
+            next_url = request.args.get("next")
+            return redirect(next_url or url_for("main.index"))
         flash("Invalid email or password")
+        log.info("failed login for %s", email)
     return render_template("auth/login.html", form=form)"""

DIFF_CACHE = """diff --git a/services/catalog/cache.py b/services/catalog/cache.py
index 91ac3e2..c04d1f7 100644
--- a/services/catalog/cache.py
+++ b/services/catalog/cache.py
@@ -1,20 +1,34 @@
 import json
+import threading
 import time

 _CACHE = {}
+_LOCK = threading.Lock()
 TTL = 600


-def get_product(product_id, loader):
-    hit = _CACHE.get(product_id)
-    if hit and time.time() - hit[0] < TTL:
-        return hit[1]
-    value = loader(product_id)
-    _CACHE[product_id] = (time.time(), value)
-    return value
+def get_product(product_id, loader, ttl=TTL):
+    \"\"\"Return the product, loading it at most once per ttl seconds.\"\"\"
+    now = time.time()
+    hit = _CACHE.get(product_id)
+    if hit is not None and now - hit[0] < ttl:
+        return hit[1]
+    with _LOCK:
+        value = loader(product_id)
+        _CACHE[product_id] = (now, value)
+    return value
+
+
+def invalidate(product_id=None):
+    if product_id is None:
+        _CACHE.clear()
+    else:
+        _CACHE.pop(product_id, None)"""

DIFF_TESTS = """diff --git a/tests/test_discounts.py b/tests/test_discounts.py
new file mode 100644
--- /dev/null
+++ b/tests/test_discounts.py
@@ -0,0 +1,24 @@
+from shop.discounts import apply_discount
+
+
+def test_percentage_discount():
+    assert apply_discount(100, "10%") == 90
+
+
+def test_fixed_discount():
+    assert apply_discount(100, "15") == 85
+
+
+def test_discount_never_negative():
+    result = apply_discount(10, "50")
+    assert result >= 0 or result < 0
+
+
+def test_invalid_discount(monkeypatch):
+    monkeypatch.setattr("shop.discounts.log", lambda *a: None)
+    try:
+        apply_discount(100, "abc")
+    except Exception:
+        pass"""

DIFF_REFACTOR = """diff --git a/billing/invoice.py b/billing/invoice.py
index 5d1e2aa..0f9c3b1 100644
--- a/billing/invoice.py
+++ b/billing/invoice.py
@@ -22,30 +22,24 @@ class Invoice:
-    def total(self):
-        t = 0
-        for line in self.lines:
-            if line.taxable:
-                t += line.amount * (1 + self.tax_rate)
-            else:
-                t += line.amount
-        if self.discount:
-            t -= self.discount
-        return max(t, 0)
+    def _line_total(self, line):
+        rate = self.tax_rate if line.taxable else 0
+        return line.amount * (1 + rate)
+
+    def total(self):
+        t = sum(self._line_total(line) for line in self.lines)
+        return t - (self.discount or 0)"""

DIFF_NEW_FUNCS = """diff --git a/tiercli/report.py b/tiercli/report.py
index 1b2c3d4..5e6f7a8 100644
--- a/tiercli/report.py
+++ b/tiercli/report.py
@@ -80,6 +80,28 @@ def tier_distribution(session, since):
     return rows

+
+def cost_by_task_type(session, since):
+    stmt = (select(Call.task_type, func.sum(Call.cost_usd))
+            .where(Call.created_at >= since).group_by(Call.task_type))
+    return dict(session.execute(stmt).all())
+
+
+def savings_vs_top_tier(session, since, top_model):
+    actual = session.scalar(select(func.sum(Call.cost_usd)).where(Call.created_at >= since))
+    counterfactual = sum(price_at(top_model, c.usage) for c in calls_since(session, since))
+    return counterfactual - (actual or 0)
+
+
+def regression_rate(session, since):
+    total = session.scalar(select(func.count()).where(Call.created_at >= since))
+    bad = session.scalar(select(func.count()).where(Call.created_at >= since, Call.outcome == "regressed"))
+    return bad / total if total else 0.0"""

DIFF_API_BREAK = """diff --git a/api/schemas.py b/api/schemas.py
index 77a1b2c..99c8d7e 100644
--- a/api/schemas.py
+++ b/api/schemas.py
@@ -12,10 +12,10 @@ class OrderOut(BaseModel):
     id: str
-    total: float
-    currency: str
+    total_cents: int
+    currency: Literal["EUR", "USD", "GBP"]
     status: OrderStatus
-    created: datetime
+    created_at: datetime
     items: list[OrderItemOut]
-    customer_email: str | None = None
+    customer: CustomerOut"""

DIFF_DEPS = """diff --git a/requirements.txt b/requirements.txt
index 0a1b2c3..4d5e6f7 100644
--- a/requirements.txt
+++ b/requirements.txt
@@ -1,9 +1,10 @@
-Django==4.2.11
+Django==5.0.6
-djangorestframework==3.14.0
+djangorestframework==3.15.1
 psycopg2-binary==2.9.9
-celery==5.3.6
+celery==5.4.0
-requests==2.31.0
+requests==2.32.3
+requestes==0.0.1
 gunicorn==22.0.0"""

DIFF_WHITESPACE = """diff --git a/app/routes.py b/app/routes.py
--- a/app/routes.py
+++ b/app/routes.py
@@ -10,7 +10,9 @@
-def index():   
-	return render_template("index.html")  
+def index():    
+    return render_template("index.html")	
+
+
 @bp.route("/health")    
 def health():
-    return {"ok":True}
+    return {"ok" :True }   """

DIFF_MIGRATION = """diff --git a/migrations/versions/0042_users_account.py b/migrations/versions/0042_users_account.py
new file mode 100644
--- /dev/null
+++ b/migrations/versions/0042_users_account.py
@@ -0,0 +1,18 @@
+def upgrade():
+    op.add_column("users", sa.Column("account_id", sa.BigInteger(), nullable=False))
+    op.execute("UPDATE users SET account_id = (SELECT id FROM accounts WHERE accounts.email = users.email)")
+    op.create_index("users_account_id_idx", "users", ["account_id"])
+    op.drop_column("users", "legacy_account_ref")
+
+
+def downgrade():
+    op.drop_index("users_account_id_idx")
+    op.drop_column("users", "account_id")"""


def big_diff(rng: random.Random, hunks: int) -> str:
    out = []
    mods = ["orders", "billing", "users", "catalog", "shipping", "notifications"]
    for h in range(hunks):
        mod = rng.choice(mods)
        fn = f"{rng.choice(['load', 'save', 'sync', 'validate', 'render', 'compute'])}_{rng.choice(['item', 'batch', 'total', 'state', 'record'])}"
        n = rng.randint(20, 400)
        out.append(f"diff --git a/{mod}/{fn}.py b/{mod}/{fn}.py\nindex {rng.getrandbits(28):07x}..{rng.getrandbits(28):07x} 100644\n"
                   f"--- a/{mod}/{fn}.py\n+++ b/{mod}/{fn}.py\n@@ -{n},9 +{n},12 @@ def {fn}(ctx, payload):")
        out.append("     if payload is None:\n         return None")
        out.append(f"-    value = ctx.store.get(payload['id'])\n+    value = ctx.store.get(payload.get('id'), timeout={rng.randint(1, 30)})")
        out.append(f"+    if value is None:\n+        log.warning('{fn}: missing %s', payload.get('id'))\n+        return None")
        out.append(f"     result = transform(value, mode='{rng.choice(['fast', 'strict', 'lenient'])}')")
        out.append(f"-    ctx.metrics.incr('{mod}.{fn}')\n+    ctx.metrics.incr('{mod}.{fn}', tags={{'mode': result.mode}})")
        out.append("     return result")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# Logs (builders)
# --------------------------------------------------------------------------------------------------

def _ts(rng: random.Random, base_h: int = 8) -> str:
    return f"2024-06-11T{base_h + rng.randint(0, 3):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z"


def nginx_log(rng: random.Random, n: int) -> str:
    paths = ["/api/orders", "/api/orders/1832", "/api/products?page=2", "/login", "/static/app.js",
             "/api/cart", "/api/checkout", "/healthz", "/api/users/me"]
    lines = []
    for _ in range(n):
        ip = f"{rng.randint(10, 220)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        status = rng.choice([200] * 12 + [201, 301, 404, 499, 502, 502, 504])
        lines.append(f'{ip} - - [11/Jun/2024:{rng.randint(8, 11):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} +0000] '
                     f'"{rng.choice(["GET", "GET", "POST"])} {rng.choice(paths)} HTTP/1.1" {status} {rng.randint(120, 48000)} '
                     f'"-" "Mozilla/5.0" rt={rng.random() * 3:.3f} req_id={rng.getrandbits(48):012x}')
    return "\n".join(lines)


def worker_log(rng: random.Random, n: int, error_every: int = 0) -> str:
    msgs = ["picked job id={j} queue=default", "job id={j} finished in {ms}ms", "cache miss for key=product:{j}",
            "retrying job id={j} attempt={a}/5 after ConnectionError", "heartbeat ok workers=8 inflight={a}",
            "connection reset by peer host=crm.internal:443 job id={j}"]
    lines = []
    for i in range(n):
        lvl = "INFO"
        m = rng.choice(msgs)
        if "retrying" in m or "reset" in m:
            lvl = "WARNING"
        line = f"{_ts(rng)} {lvl:<7} [worker-{rng.randint(1, 8)}] " + m.format(j=rng.randint(10000, 99999), ms=rng.randint(3, 9000), a=rng.randint(1, 5))
        lines.append(line)
        if error_every and i % error_every == error_every - 1:
            lines.append(f"{_ts(rng)} ERROR   [worker-{rng.randint(1, 8)}] job id={rng.randint(10000, 99999)} failed")
            lines.extend(PY_TB_TYPEERROR.splitlines())
    return "\n".join(lines)


def k8s_json_log(rng: random.Random, n: int) -> str:
    lines = []
    for _ in range(n):
        ev = rng.choice([
            {"level": "info", "msg": "polling queue", "queue": "invoices", "batch": rng.randint(1, 50)},
            {"level": "warn", "msg": "upstream timeout, will retry", "upstream": "payments-api", "attempt": rng.randint(1, 6), "backoff_ms": rng.choice([200, 400, 800, 1600])},
            {"level": "error", "msg": "giving up after max retries", "upstream": "payments-api", "invoice": f"inv_{rng.getrandbits(32):08x}"},
            {"level": "info", "msg": "processed invoice", "invoice": f"inv_{rng.getrandbits(32):08x}", "ms": rng.randint(20, 900)},
        ])
        ev = {"ts": _ts(rng), **ev, "pod": f"invoice-worker-6c9d{rng.randint(0, 9)}"}
        lines.append(json.dumps(ev, separators=(",", ":")))
    return "\n".join(lines)


def ci_log(rng: random.Random, n: int) -> str:
    steps = ["Restoring cache for node_modules", "Cache not found for key: npm-linux-{h}", "Run npm ci",
             "added 1843 packages in {s}s", "Run pytest -q services/{svc}", "Building docker image services/{svc}",
             "Step {k}/14 : RUN pip install -r requirements.txt", "Step {k}/14 : COPY . /app",
             "#{k} DONE {s}s", "Uploading artifact coverage-{svc}.xml"]
    svcs = ["orders", "billing", "users", "catalog", "search", "gateway", "shipping", "notify", "reports",
            "auth", "inventory", "pricing", "media", "admin"]
    lines = []
    for _ in range(n):
        s = rng.choice(steps).format(h=f"{rng.getrandbits(40):010x}", s=f"{rng.random() * 240:.1f}", svc=rng.choice(svcs), k=rng.randint(1, 14))
        lines.append(f"{_ts(rng)} {s}")
    return "\n".join(lines)


def error_log_with_traces(rng: random.Random, n_blocks: int) -> str:
    blocks = []
    for _ in range(n_blocks):
        blocks.append(f"{_ts(rng)} ERROR [gunicorn.error] Exception on /api/orders [POST] req_id={rng.getrandbits(40):010x}")
        blocks.append(PY_TB_KEYERROR)
        for _ in range(rng.randint(1, 4)):
            blocks.append(f"{_ts(rng)} INFO  [app.access] POST /api/orders 500 {rng.randint(5, 90)}ms")
    return "\n".join(blocks)


def json_records(rng: random.Random, n: int) -> str:
    recs = []
    for i in range(n):
        recs.append({"id": f"evt_{i:05d}", "type": rng.choice(["order.created", "order.paid", "order.shipped"]),
                     "ts": _ts(rng), "customer": {"id": rng.randint(1, 9999), "tier": rng.choice(["free", "pro", "team"])},
                     "amount": rng.randint(100, 99999), "tags": rng.sample(["promo", "b2b", "gift", "eu", "us"], 2)})
    return json.dumps(recs, separators=(",", ":"))


def big_python_module(rng: random.Random, n_funcs: int) -> str:
    out = ["import json", "import logging", "from dataclasses import dataclass", "", "log = logging.getLogger(__name__)", ""]
    verbs = ["load", "parse", "normalize", "merge", "validate", "render", "export", "compute", "resolve", "refresh"]
    nouns = ["invoice", "customer", "ledger", "shipment", "batch", "report", "refund", "tier", "quota", "plan"]
    for i in range(n_funcs):
        name = f"{rng.choice(verbs)}_{rng.choice(nouns)}_{i}"
        out.append(f"def {name}(ctx, record, strict=False):")
        out.append("    if record is None:")
        out.append("        return None")
        out.append(f"    value = ctx.get(record['{rng.choice(nouns)}_id'])")
        out.append("    if strict and not value:")
        out.append(f"        raise ValueError('{name}: missing value')")
        out.append(f"    log.debug('{name} %s', record.get('id'))")
        out.append(f"    return {{'id': record.get('id'), 'value': value, 'score': {rng.randint(1, 99)} * len(str(value))}}")
        out.append("")
        out.append("")
    return "\n".join(out)


def pad_to(build, rng: random.Random, target: int) -> str:
    """Call build(rng, n) growing n until the text is at least target characters."""
    n = 50
    while True:
        text = build(rng, n)
        if len(text) >= target:
            return text[: target + 2000].rsplit("\n", 1)[0]
        n *= 2


# ==================================================================================================
# The tasks. Each entry: (task_type, text). Labels follow taxonomy.LABEL_OF_TASK_TYPE; the type is
# what a careful engineer would file the request under (pasted material is context, not the ask).
# Conventions: a scoped single-file refactor is filed under "feature" (MEDIUM, tier2 in the design);
# "find the bug" / "why does X fail" is bug_fix; fixing lint/format warnings is reformat; fixing a
# wrong docstring/comment is docstring; writing a test that reproduces a bug is test_gen.
# ==================================================================================================

def build_tasks() -> list[tuple[str, str]]:
    R = random.Random(20240611)
    F = fence
    T: list[tuple[str, str]] = []

    def add(task_type: str, *texts: str) -> None:
        for t in texts:
            T.append((task_type, t))

    # ---------------------------------------------------------------------------------- file_lookup
    add("file_lookup",
        "where is the config loaded?",
        "Which file defines the `UserSession` class?",
        "where do we set the database URL",
        "show me the contents of pyproject.toml",
        "open src/app/settings.py and tell me what DEBUG is set to",
        "list the files in the migrations folder",
        "What's in the .env.example file?",
        "Where is the entry point for the CLI? I can't find where `main()` gets called.",
        "find the file that registers the flask blueprints",
        "which module contains the retry decorator?",
        "wheres the logging config",
        "Can you point me to where the JWT secret is read from the environment?",
        "Print the Dockerfile for the api service.",
        "What port does the dev server listen on? Check the config.",
        "ls the tests directory please",
        "Where is `fix_bug_report` defined?",
        "where's the `design_review` template stored?",
        "Which file has the `refactor_legacy_imports` function? I want to read it before the meeting.",
        "Locate the webpack config.",
        "Where are the GraphQL resolvers for the Order type?",
        "show me the scripts section of package.json",
        "what version of django is pinned in requirements.txt?",
        "Where does the app read MAX_UPLOAD_SIZE from?",
        "Is there a Makefile in this repo? If so show me its targets.",
        "Which directory holds the email templates?",
        "find where the celery app instance is created",
        "where's the main router file for the express app",
        "What file contains the SQLAlchemy models for invoices?",
        "can u show me the CI workflow file",
        "Open the README and tell me the install command.",
        "Where's the definition of the `Architecture` enum?",
        "read src/utils/algorithm_helpers.py and show me the first 50 lines",
        "what does the `timeout` key in config/worker.yaml default to?",
        "Which file is the `broken_db` fixture defined in?",
        "We're onboarding a new dev next week and they asked where the feature flags are configured. "
        "I honestly don't remember. Where do we define them?",
        "Before I change anything: where does the scheduler read its cron expressions from?",
        "Show me the nginx config for the staging site.",
        "whats the path to the alembic env.py",
        "Find the file where `calculate_tax` is implemented.",
        "Which test file covers the billing module?",
        "Could you please open docs/ARCHITECTURE.md and show me the section on queues?",
        "where is the bug report template? something under .github I think",
        "cat the gunicorn config",
        "what's in src/tiercli/taxonomy.py",
        "which file declares the protobuf messages for the order service?",
        "Where do we configure CORS?",
        "find me the jest config file",
        "whats the default value of PAGE_SIZE and where's it defined",
        )
    add("file_lookup",
        F(LS_OUT, "console") + "\n\nwhich of these is the entry point for the worker?",
        "Here's the layout of the backend:\n\n" + F(TREE_OUT) + "\n\nwhere does the password hashing live? just point me to the file.",
        PY_TB_KEYERROR + "\n\nwhich file and line is this error coming from? just tell me where, don't fix it yet",
        "I see a lot of retries in the invoice worker logs:\n\n" + pad_to(k8s_json_log, R, 40000)
        + "\n\nwhere is the retry/backoff config for this worker defined?",
        F(GIT_STATUS) + "\nwhere did I put the new migration file?",
        PY_TB_MODULENOTFOUND + "\n\nDon't change anything yet, I just need to know: where is the payments gateway module in this repo? Is it under billing/ or libs/?",
        "Our compose file:\n" + F(COMPOSE_YAML, "yaml") + "\nWhich env file sets REDIS_URL for the worker? Show me that file.",
        JS_TB_UNDEFINED + "\n\nwhat file is the CartItems component in? I want to open it",
        "here's the worker log from this morning\n\n" + worker_log(R, 60) + "\n\nwhere's the celeryconfig for this worker? show me it",
        )

    # --------------------------------------------------------------------------------------- search
    add("search",
        "find all usages of `get_user_by_email`",
        "grep for TODO comments in the codebase",
        "Search the repo for any hardcoded AWS keys.",
        "List every place we call requests.get without a timeout.",
        "Where all is `legacy_auth` imported?",
        "find every occurrence of print( in src/ that should probably be a log call -- just list them, don't change anything",
        "search for uses of the deprecated datetime.utcnow",
        "which files reference the ORDERS_V1 feature flag?",
        "Are there any places that catch a bare `except:`? List them.",
        "find all the SQL queries that touch the payments table",
        "grep -rn 'fixme' please",
        "Which endpoints use the @login_required decorator?",
        "find every call site of refactor_user_model()",
        "search for all the places that read os.environ directly",
        "do we still use lodash anywhere?",
        "Look for any file importing from app.legacy",
        "find all React components that use useEffect without a dependency array",
        "Is parse_date used anywhere outside the utils module?",
        "list all the callers of send_email",
        "Find occurrences of the string \"Something went wrong\" in the frontend.",
        "search the codebase for eval( calls",
        "find every TODO(architecture) comment and list them as file:line",
        "which tests are marked as flaky?",
        "find all the places that construct a Decimal from a float",
        "Search for all migrations that add an index.",
        "Which modules import numpy? We're trying to see if we can drop it.",
        "Can you search for all the places where we call time.sleep inside async functions?",
        "find all usages of the design tokens file (tokens.json) across the frontend",
        "list every function decorated with @lru_cache",
        "are there any python2 style print statements left anywhere?",
        "search for test files that import `mock` instead of `unittest.mock`",
        "find all the call sites of fix_encoding and list them",
        "search across all the packages in the monorepo for the string api.v1.internal",
        "Which Go files call log.Fatal?",
        "grep for console.log in src/ and count them per file",
        "show me all occurrences of SELECT * in our .sql files",
        "Where is UserSerializer used? Need a list of every file.",
        "find all the places where we compare strings with `is`",
        "look for dead code: which functions in utils.py are never referenced anywhere?",
        "search for hardcoded URLs that point to staging",
        "list all the env vars the app reads",
        "in which files do we instantiate S3Client?",
        "search for `# type: ignore` comments and list them grouped by file",
        "find usages of the algorithm= parameter in our jwt.decode calls",
        "can you check whether anything still imports old_payments before I delete it?",
        "hey, grep for places where we swallow exceptions (except Exception: pass)",
        "find all the Kotlin classes that extend BaseViewModel",
        "What calls recompute_totals? I need the full list of callers.",
        "find where else we use datetime.now() without a tz",
        "Is there anywhere in the codebase that still uses the v1 webhooks URL? search templates too",
        "which files mention 'stripe' outside the payments folder?",
        )
    add("search",
        "I keep seeing this in prod:\n\n" + worker_log(R, 40) + "\n\nsearch the codebase for where 'connection reset by peer' is logged",
        "Search the access log below for 502s and list their request ids.\n\n" + nginx_log(R, 120),
        "grep found these:\n" + F(GREP_SEND) + "\nare there other call sites that grep missed, e.g. via getattr or in the templates? search for them",
        "Here's the regex we use for emails:\n" + F(PY_REGEX, "python") + "\nare there other places in the codebase that define their own email regex? find them",
        "Looking at this trace\n\n" + PY_TB_NONETYPE + "\n\nwhere else do we access user.team without a None check? just list the places",
        )

    # ------------------------------------------------------------------------------------ docstring
    add("docstring",
        "add a docstring to refactor_all_modules",
        "write a Google-style docstring for parse_config",
        "Document the RateLimiter class (class and method docstrings, numpy style).\n\n" + F(PY_RATE_LIMITER, "python"),
        "add JSDoc comments to the functions in utils.ts\n\n" + F(TS_UTILS, "ts"),
        "Can you add a comment explaining why we sleep for 2 seconds here?\n\n" + F(PY_SLEEP, "python"),
        "update the docstring of fetch_orders, it still mentions the `limit` param which we removed",
        "The docstring on merge_accounts is wrong: it says it returns a list but it returns a dict. Fix the docstring.",
        "add inline comments to this regex so the next person understands it:\n\n" + F(PY_REGEX, "python"),
        "write a module-level docstring for payments/gateway.py explaining what it's for",
        "document the parameters of the design_schema function",
        "add a short comment above the algorithm selection block explaining why we default to HS256",
        "Write docstrings for the test helpers in conftest.py",
        "add a comment explaining the heap in schedule_jobs. no changes to the algorithm itself please\n\n" + F(PY_HEAP_SCHEDULE, "python"),
        "rustdoc comments for the public items in lib.rs:\n\n" + F(RUST_LIB, "rust"),
        "add godoc comments to the exported identifiers in this package\n\n" + F(GO_EXPORTED, "go"),
        "pydocstyle output:\n\n" + PYDOCSTYLE_OUT + "\n\nadd the missing docstrings",
        "Explain in the docstring what the return value of diff_trees means",
        "pls add docstrings, code below\n\n" + PY_PARSE_DURATION,
        "Add a header comment to each migration file in migrations/versions saying what it does",
        "Write a docstring for this function, keep it to one line:\n" + F(PY_SLUGIFY, "python"),
        "Add a note to the docstring of `retry` that it's not safe for non-idempotent requests.",
        "The comments in this function are out of date after last week's change, update them to match the code:\n\n" + F(PY_COMMENTED_OUT.replace("# print", "# prints the number of items synced from v1\n    # print"), "python"),
        "add @param/@returns JSDoc to the exported hooks in src/hooks",
        "document this SQL query with comments explaining each CTE\n\n" + F(SQL_CTE, "sql"),
        "Docstring for the architecture_check CLI command please",
        "write a README section documenting the --dry-run flag",
        "add comments to this bash script so ops understands it\n\n" + F(BASH_SCRIPT, "bash"),
        "please add a docstring that documents the exceptions load_model can raise",
        "Add docstrings to the methods of OrderRepository. Don't change any logic.\n\n" + F(PY_ORDER_REPO, "python"),
        "update the module docstring of settings.py to mention the new TIER_HOME env var",
        "add a comment to the Dockerfile explaining why we pin the base image digest",
        "Fix the typos in the comments of this file, don't touch the code.\n\n" + F(PY_COMMENTED_OUT.replace("synced", "syncd").replace("old_items", "old_itmes"), "python"),
        "Could you write the docstring for bisect_failing_commit? It does a binary search over the commit range.",
        "add a docstring to the fixture broken_db explaining what state it leaves the database in",
        "write doc comments for the public API of the scheduler crate",
        "add a comment above each variable in .env.example describing it",
        "the docstring for slow_query_detector is missing the Args section, add it",
        "Add TSDoc to the ApiClient class",
        "comment this code\n\n" + PY_RETRY,
        "add a doc comment explaining what the magic number 0x5f3759df is doing here\n\n" + F(PY_MAGIC, "c"),
        "please convert these # comments into a proper docstring\n\n" + F(PY_COMMENTS_TO_DOC, "python"),
        "add docstrings to the new functions in this diff, nothing else\n\n" + DIFF_NEW_FUNCS,
        "Add a docstring to handle_crash explaining when it's called",
        "update the docstring of migrate_all_services to say it's idempotent",
        "docstring for this pls\n" + PY_LRU,
        "add a brief doc comment to each field of this struct\n\n" + F(GO_STRUCT, "go"),
        "the doctest example in to_snake_case is wrong, it shows the input as the output. fix the example\n\n" + F(PY_DOCSTRING_WRONG, "python"),
        "Write Javadoc for the public methods of PaymentService\n\n" + F(JAVA_SERVICE, "java"),
        "Add comments to this Terraform module explaining each variable\n\n" + F(HCL_MODULE, "hcl"),
        "Explain what this function does in a docstring, I'll review it afterwards\n\n" + F(PY_CUBIC, "python"),
        "add sphinx-style :param: docs to the functions in io_utils.py",
        "Can you add a docstring to optimize_route? It's the A* implementation, just document it, don't touch the algorithm.",
        "Our internal tools module has no documentation at all. New hires keep asking what each function does. "
        "Here it is:\n\n" + F(big_python_module(R, 20), "python") + "\n\nAdd docstrings to all the functions.",
        "add docstrings to every public function in this module\n\n" + pad_to(big_python_module, R, 40000),
        "Write a short docstring for each of these three functions.\n\n" + F(PY_EXTRACT + "\n\n" + PY_SLUGIFY + "\n\n" + PY_FLOAT_EQ, "python"),
        "document what the return value of schedule_jobs means, it's not obvious",
        "The function comment for cleanup_expired_sessions is misleading: it says it deletes sessions older than a day but it's 7 days. Correct the comment.",
        )

    # ------------------------------------------------------------------------------------- reformat
    add("reformat",
        "reformat this to pep8\n\n" + F(PY_UGLY, "python"),
        "fix the indentation in this YAML\n\n" + F(YAML_BAD_INDENT, "yaml"),
        "sort the imports in main.py",
        "Convert the double quotes to single quotes in src/components to match our eslint config",
        "fix these flake8 warnings\n\n" + FLAKE8_OUT,
        "rename the variable x to retry_count in wait_for_replica, nothing else",
        "pretty print this json\n" + JSON_MINI,
        "fix the lint errors eslint reports\n\n" + ESLINT_OUT,
        "wrap the lines in this file at 100 chars",
        "convert tabs to spaces in scripts/build.py",
        "reorder the keys in this JSON alphabetically\n\n" + F(JSON_CAMEL, "json"),
        "format this SQL so it's readable\n\n" + SQL_ONELINER,
        "remove the trailing whitespace in all the files under templates/",
        "convert the % formatting to f-strings\n\n" + F(PY_PERCENT, "python"),
        "remove the unused imports\n\n" + RUFF_OUT,
        "run prettier on the components folder",
        "convert this JSON to YAML\n\n" + JSON_MINI,
        "reformat the ASCII architecture diagram so the boxes and columns line up\n\n" + F(ARCH_ASCII),
        "fix the formatting of this markdown table\n\n" + MD_TABLE,
        "rename tmp to buffer in this function, no other changes",
        "normalize the line endings in the repo to LF",
        "sort this requirements file alphabetically (case-insensitive)\n\n" + REQUIREMENTS_UNSORTED,
        "Align the struct tags in this struct\n" + F(GO_STRUCT.replace("   string", " string").replace("  time.Duration", " time.Duration"), "go"),
        "gofmt this please\n\n" + GO_UNFORMATTED,
        "fix the ruff errors\n\n" + RUFF_OUT,
        "convert the camelCase keys in this JSON to snake_case\n\n" + JSON_CAMEL,
        "make tests/test_api.py pass black --check",
        "change all the `var` declarations to let/const in this file\n\n" + F(JS_VAR, "js"),
        "turn this CSV into a markdown table\n\n" + CSV_SAMPLE,
        "indent this properly\n\n" + PY_UGLY,
        "this stack trace got mangled into one line when I copied it from Sentry, can you reformat it so it's readable?\n\n" + ONE_LINE_TRACE,
        "fix the import order isort is complaining about\n\n" + ISORT_DIFF,
        "the pre-commit hooks fail on trailing-whitespace and end-of-file-fixer, fix those\n\n" + PRECOMMIT_OUT,
        "rename the module-level constant `algo` to HASH_ALGORITHM in hashing.py (it's only used in that file)",
        "reformat this docker-compose file, the indentation is all over the place\n\n" + YAML_BAD_INDENT,
        "rustfmt this\n\n" + RUST_UNFORMATTED,
        "please make the naming consistent in this file: snake_case for all the variables\n\n" + F(PY_UGLY.replace("data=", "fileData=").replace("lines=", "lineList="), "python"),
        "break this long line up into something readable\n\n" + SQL_ONELINER,
        "add trailing commas to the multi-line dict literals in settings.py so black keeps them exploded",
        "convert this shell output into a JSON array of {name, size} objects\n\n" + LS_OUT,
        "minify this JSON\n\n" + F(JSON_CAMEL, "json"),
        "sort the CSS properties alphabetically in styles/button.css",
        "fix the pylint invalid-name warnings in this module\n\n" + PYLINT_OUT,
        "remove the commented-out code in this function\n\n" + F(PY_COMMENTED_OUT, "python"),
        "pretty print this and sort the keys:\n\n" + pad_to(json_records, R, 40000),
        "Reformat the log lines below as a table with columns timestamp | level | message\n\n" + worker_log(R, 25),
        "Convert the SQL keywords in this query to uppercase to match our style guide\n\n" + SQL_ONELINER,
        "the yaml linter complains, fix the indentation issues it reports\n\n" + YAMLLINT_OUT,
        "make this JSON valid, it has trailing commas and single quotes\n\n" + JSON_BROKEN,
        "strip the ANSI color codes from this output\n\n" + ANSI_OUT,
        "tidy up the whitespace in this diff before I commit it\n\n" + DIFF_WHITESPACE,
        "could you reorder the methods in the OrderRepository class alphabetically? no logic changes",
        "fix only the eslint `quotes` and `semi` errors, leave the rest",
        "convert this XML config to JSON\n\n" + XML_CONFIG,
        "can u fix the formating of this function, its a mess\n\n" + GO_UNFORMATTED,
        "Our style guide says max 88 columns. Reflow the docstrings and comments in pricing.py to fit, don't change any code.",
        "dedent this block by one level\n\n" + F(PY_SLEEP, "python"),
        )

    # ------------------------------------------------------------------------------------- test_gen
    add("test_gen",
        "write unit tests for parse_duration\n\n" + F(PY_PARSE_DURATION, "python"),
        "Add pytest tests covering the edge cases of this function:\n\n" + F(PY_COMPUTE_TOTAL, "python"),
        PY_TB_KEYERROR + "\n\nwrite a test that reproduces this. don't fix it yet, I want the failing test first",
        "add jest tests for the cart reducer\n\n" + F(TS_CART_REDUCER, "ts"),
        "coverage for the payments package:\n\n" + COVERAGE_OUT + "\n\ncan you get refund.py above 90%?",
        "write a regression test for the off-by-one we fixed yesterday in pagination",
        "generate table-driven tests for this Go function\n\n" + F(GO_PARSE, "go"),
        "write property-based tests with hypothesis for merge_intervals",
        "add an integration test for the /orders endpoint using the test client",
        "write tests for the fix_encoding helper",
        "can you write a few tests for this class?\n\n" + F(PY_RATE_LIMITER, "python"),
        "write a failing test for the bug where an empty cart crashes checkout. don't fix the bug yet",
        "add tests for the new --dry-run flag",
        "mock the S3 client and test upload_report",
        "write snapshot tests for the Header component",
        "I need test cases for the date parser: leap years, DST transitions, invalid inputs",
        "test the error paths of load_config: missing file, bad yaml, missing keys",
        "Write a pytest fixture that creates a temp sqlite db, and tests for the repository class that use it\n\n" + F(PY_ORDER_REPO, "python"),
        "add unit tests for the design_tokens module",
        "write rspec specs for the User model validations",
        "add tests for architecture_report() output",
        "write tests for the changes in this diff\n\n" + DIFF_CACHE,
        "create a test for the retry logic that checks it backs off exponentially\n\n" + F(PY_RETRY, "python"),
        "we have zero tests for the CLI, add some using typer's CliRunner",
        "write a test that slugify handles unicode input\n\n" + PY_SLUGIFY,
        "add test cases to test_parser.py for nested brackets",
        "write unit tests for the LRU cache class below\n\n" + F(PY_LRU, "python"),
        "junit tests for PaymentService.refund, mock the gateway and repository\n\n" + F(JAVA_SERVICE, "java"),
        "add parametrized tests for all the HTTP status mappings in error_to_status",
        "write tests for the refactor_helpers module",
        "tests for this pls\n" + PY_FLOAT_EQ,
        "Add a unit test verifying that hash_password never returns the plaintext",
        "write tests for this handler using httptest\n\n" + F(GO_HANDLER, "go"),
        "could you add doctests to normalize_phone?",
        "write a test that fails if the API ever returns more than 100 items in one page",
        "generate fixtures and tests for the invoice PDF renderer",
        PYTEST_FAIL + "\n\nthe refund tests only cover full refunds, add cases for partial and negative amounts",
        "add tests for the rate limiter's window rollover",
        "write contract tests between the web app and the orders API",
        "Here's what prod logged:\n\n" + pad_to(error_log_with_traces, R, 12000) + "\n\nWrite a regression test that covers this so it never comes back.",
        "write an end-to-end playwright test for the login flow",
        "Add a test that asserts the migration in this diff is reversible\n\n" + DIFF_MIGRATION,
        "please write tests for bisect_left\n\n" + F(PY_BINSEARCH, "python"),
        "We just merged the invoice export feature without tests. Can you write tests for export_invoices covering csv and the unsupported format error?\n\n" + F(PY_TODO_FN, "python"),
        )

    # -------------------------------------------------------------------------------------- bug_fix
    add("bug_fix",
        PY_TB_KEYERROR + "\n\nfix this",
        "prod is spamming this, sorry for the wall of text:\n\n" + pad_to(error_log_with_traces, R, 40000) + "\n\nfix this",
        "the login page throws a 500 when the email contains a plus sign. fix it",
        "why does compute_total return None sometimes?\n\n" + F(PY_COMPUTE_TOTAL, "python"),
        JS_TB_UNDEFINED + "\n\nhow do i fix this",
        "tests are failing after the upgrade\n\n" + PYTEST_FAIL,
        "NPE when placing an order for a customer without a shipping address:\n\n" + JAVA_NPE + "\n\ncan you fix OrderService?",
        GO_PANIC + "\n\nfix the parser so it doesn't panic on short lines\n\n" + F(GO_PARSE, "go"),
        "help me fix this\n\n" + RUST_BORROW,
        "the cron job runs twice every hour. can you figure out why and fix it",
        "Find the bug in this function\n\n" + F(PY_BINSEARCH, "python"),
        "search for why the login fails on safari only",
        "our docker build fails with this\n\n" + DOCKER_BUILD_FAIL,
        "npm install fails\n\n" + NPM_ERR,
        "fix the off-by-one in pagination, the last page is always empty",
        "the api returns dates in UTC but the frontend shows them shifted by one hour during DST",
        "users report that the CSV export has garbled accented characters (é shows up as Ã©)",
        "Creating a user twice gives this instead of a 409:\n\n" + PY_TB_INTEGRITY + "\n\nplease fix",
        "the regex doesn't match emails with subdomains like a@mail.example.co.uk\n\n" + F(PY_REGEX, "python"),
        "my useEffect runs in an infinite loop\n\n" + F(TS_EFFECT_LOOP, "jsx"),
        "This SQL returns duplicate rows, fix it\n\n" + F(SQL_DUPES, "sql"),
        "the retry decorator never retries on timeouts\n\n" + F(PY_RETRY, "python"),
        "Fix the failing CI please\n\n" + ci_log(R, 30) + "\n" + PYTEST_FAIL,
        "why is this returning 403 for admins who are not in the team?\n\n" + F(PY_AUTHZ, "python"),
        PY_TB_NONETYPE + "\n\nthis happens for users that left their team. fix it",
        "fix the race condition where two workers pick the same job from the jobs table",
        "Segfault in the C extension when passing an empty list to fast_sum",
        "the architecture diagram endpoint returns 404 since the deploy",
        "fix: sorting by price puts 100 before 20 in the product list",
        PY_TB_IMPORT_CIRC + "\n\nhow do I get rid of this circular import",
        "fix the broken test\n\n" + PYTEST_FAIL,
        "the docstring generator crashes on functions with no args",
        "the refactor_all_modules script dies with this:\n\n" + py_tb_recursion(60) + "\n\nthere's a symlink loop in the repo I think. fix the walker",
        "form validation lets empty names through on the signup page",
        CRASHLOOP + "\n\nwhat's wrong and how do I fix it",
        "Getting CORS errors from the frontend after the deploy\n\n" + CORS_CONSOLE,
        "Can you please look into why the product cache never invalidates when a product is updated?",
        "the reformat command deletes the last line of the file if it has no trailing newline",
        "fix the flaky test test_checkout_concurrent, it fails about 1 in 10 runs",
        "this shell script breaks on filenames with spaces\n\n" + F(BASH_SCRIPT, "bash"),
        "mypy errors after upgrading pydantic to v2\n\n" + MYPY_OUT,
        "fix this\n\n" + JS_TB_UNDEFINED,
        "pls fix\n" + PY_TB_TYPEERROR,
        "the search endpoint ignores the limit param, always returns 50",
        "webhook signature verification fails for payloads containing unicode",
        "wrong total on the invoice when the discount is bigger than the subtotal, it should clamp at 0",
        "500 on /api/orders?page=0\n\n" + nginx_log(R, 15) + "\n" + PY_TB_TYPEERROR,
        "it says permission denied when I run the deploy script\n\n" + PERMISSION_DENIED,
        "Help, prod is down!! the workers are all logging this:\n\n" + worker_log(R, 150, error_every=10)
        + "\n\nwhat's causing it and how do i fix it",
        "Since yesterday the nightly report job exits with code 137 about halfway through. Memory graph climbs steadily. "
        "Nothing changed in the job itself but we upgraded pandas. Can you find the leak and fix it?",
        )

    # -------------------------------------------------------------------------------------- feature
    add("feature",
        "add a --verbose flag to the CLI",
        "add an endpoint GET /users/{id}/orders that returns the user's orders, paginated",
        "implement CSV export for the reports page",
        "add rate limiting to the login endpoint, 5 attempts per minute per IP",
        "Add a dark mode toggle to the settings page",
        "support reading the config from TOML as well as YAML",
        "add a created_by column to the invoices table with a migration and expose it in the API",
        "make the retry count configurable via an env var",
        "implement password reset via email",
        "add sorting by date to the results table",
        "add a health check endpoint",
        "Implement the `tier report --csv` option",
        "add pagination to this endpoint\n\n" + F(PY_PRODUCTS_VIEW, "python"),
        "Add a cancel button to the upload dialog that aborts the request",
        "Let users upload an avatar image, resize it to 256x256 and store it on S3",
        "add a `--since 48h` style duration option to the report command",
        "add a cache for get_exchange_rates with a 10 minute TTL",
        "add webhooks: when an order ships, POST the order to the customer's configured URL",
        "implement soft delete for comments",
        "write a function that converts a duration string like '1h30m' to seconds",
        "add an --output json option to this command\n\n" + F(PY_CLI_LIST, "python"),
        "extract the image resizing part of this into its own helper function\n\n" + F(PY_EXTRACT, "python"),
        "refactor this to use early returns instead of the nested ifs\n\n" + F(PY_NESTED, "python"),
        "add search to the admin users list (by name or email)",
        "add a docstring coverage check to our CI pipeline (interrogate, fail under 80%)",
        "implement a `design` subcommand that prints the current routing config as a table",
        "add French translations to the signup form",
        "add a Prometheus counter for failed logins",
        "Implement undo for the last delete in the todo app",
        "make the API return 422 with per-field errors instead of a generic 400",
        "can you add retry with exponential backoff to our HTTP client wrapper?",
        "Implement a useDebounce hook and use it in the search box",
        "add a 'remember me' checkbox to login that extends the session to 30 days",
        "add gzip compression for responses over 1KB",
        "Build a small script that reads an nginx access log like this and prints the top 10 IPs by request count\n\n" + nginx_log(R, 12),
        "add an option to the CSV importer to skip rows that fail validation and report them at the end",
        "convert this class component to a function component with hooks\n\n" + F(TS_CLASS_COMPONENT, "jsx"),
        "Add an `architecture` field (x86_64 / arm64) to the build metadata JSON we upload",
        "Add a /metrics endpoint",
        "add validation that end_date is after start_date in the booking form",
        "implement the TODO in this function\n\n" + F(PY_TODO_FN, "python"),
        "Create React components for the TODO app in a components/ directory:\n1. TodoItem - displays a todo with checkbox, text, delete button\n"
        "2. TodoList - renders a list of TodoItem\n3. AddTodo - input form to add new todos\n4. Filter - buttons to filter all/active/completed",
        "Implement state management for the TODO app with useReducer: add, delete, toggle, filter. Persist to localStorage.",
        "add a Slack notification when a deploy finishes",
        "add optimistic updates to the like button",
        "add a `tier classify --batch FILE.jsonl` option that classifies every line",
        "support multiple file uploads in the attachment form",
        "We export invoices as CSV today. Finance wants XLSX too, one sheet per month. The export code is in billing/export.py. Can you add that?",
        )

    # ---------------------------------------------------------------------------------- code_review
    add("code_review",
        "review this diff\n\n" + DIFF_CACHE,
        "can you review my PR?\n\n" + DIFF_LOGIN_FIX,
        "Is this code thread safe?\n\n" + F(PY_ASYNC_LOCKS, "python"),
        "take a look at this function and tell me if anything's off\n\n" + F(PY_RESOURCE_LEAK, "python"),
        "review the changes in this commit for security issues\n\n" + CI_YAML_DIFF,
        "LGTM?\n\n" + DIFF_REFACTOR,
        "Any problems with this migration before I run it on prod?\n\n" + F(SQL_MIGRATION, "sql"),
        "review this Dockerfile for best practices\n\n" + F(DOCKERFILE, "dockerfile"),
        "what would you change in this code?\n\n" + F(PY_AUTHZ, "python"),
        "code review please, focus on error handling\n\n" + F(GO_HANDLER, "go"),
        "Is there an SQL injection risk here?\n\n" + F(PY_SQL_INJECTION, "python"),
        "review this PR, it fixes the login bug from yesterday\n\n" + DIFF_LOGIN_FIX,
        "review the tests in this diff, are they actually testing anything?\n\n" + DIFF_TESTS,
        "is this refactor correct? did I change behaviour anywhere?\n\n" + DIFF_REFACTOR,
        "check my binary search implementation for mistakes\n\n" + F(PY_BINSEARCH, "python"),
        "give me feedback on this endpoint spec before I implement it\n\n" + F(OPENAPI_SNIPPET, "yaml"),
        "critique this bash script\n\n" + BASH_SCRIPT,
        "Review this k8s manifest, anything missing for production?\n\n" + F(K8S_MANIFEST, "yaml"),
        "can someone sanity check this regex\n\n" + PY_REGEX,
        "review:\n" + DIFF_NEW_FUNCS,
        "does this handle all the edge cases?\n\n" + F(PY_PARSE_DURATION, "python"),
        "please do a thorough review of this, I'm new to Go\n\n" + F(GO_EXPORTED, "go"),
        "is it ok to compare these with == here?\n\n" + F(PY_FLOAT_EQ, "python"),
        "Are there any performance problems in this query? It runs on a 200M row table.\n\n" + F(SQL_SLOW, "sql"),
        "I'd like a second pair of eyes on this async code. anything that could deadlock or leak?\n\n" + F(PY_ASYNC_LOCKS, "python"),
        "review the error messages in this diff for clarity\n\n" + DIFF_LOGIN_FIX,
        "compare these two implementations and tell me which one you'd merge\n\n"
        + F(PY_LRU, "python") + "\n\n" + F(PY_RATE_LIMITER, "python"),
        "Review the terraform plan before I apply it\n\n" + TF_PLAN,
        "is this the idiomatic way to do it in rust?\n\n" + F(RUST_LIB, "rust"),
        "Check this PR against our style guide\n\n" + DIFF_NEW_FUNCS,
        "review this React component for unnecessary re-renders\n\n" + F(TS_RERENDER, "jsx"),
        "Would you approve this PR? Be honest.\n\n" + DIFF_API_BREAK,
        "Please review the migration in this diff, it touches the users table which has 40M rows\n\n" + DIFF_MIGRATION,
        "what do you think of this class?\n\n" + F(JAVA_SERVICE, "java"),
        "I've been refactoring all afternoon. Review my changes for obvious mistakes before I push:\n\n" + pad_to(big_diff, R, 40000),
        "audit this auth check for security holes\n\n" + F(PY_AUTHZ, "python"),
        "is my use of unsafe sound here?\n\n" + F(RUST_UNSAFE, "rust"),
        "review the CI workflow changes\n\n" + CI_YAML_DIFF,
        "check this code for resource leaks\n\n" + F(PY_RESOURCE_LEAK, "python"),
        "review pls\n\n" + DIFF_TESTS,
        "any red flags in this dependency bump?\n\n" + DIFF_DEPS,
        "Does this change break backwards compatibility for API clients?\n\n" + DIFF_API_BREAK,
        )

    # --------------------------------------------------------------------------------- architecture
    add("architecture",
        "We're outgrowing a single Postgres instance (2TB, write-heavy). Should we shard by tenant, move to Citus, or "
        "split reads onto replicas? Lay out the tradeoffs and recommend an approach.",
        "Design the multi-tenant data model and isolation strategy for our SaaS: schema-per-tenant vs shared tables with row-level security.",
        "Here's our monolith:\n\n" + F(MONOLITH_TREE) + "\n\nHow should we split it into services? Which boundaries first, and how do we handle the shared models?",
        "Propose an event-driven architecture for order processing. Inventory, payments and shipping all need to react to order events, "
        "and we need at-least-once delivery with idempotent consumers.",
        "Should we use Kafka or RabbitMQ for the notification pipeline? ~50k msgs/sec at peak, we need replay for 7 days.",
        "Design a plugin system for the CLI so third parties can add commands without forking",
        "We need offline-first sync for the mobile app. Design the overall sync architecture between devices and the backend, including conflict resolution.",
        "Plan the migration from our REST APIs to GraphQL federation across the 6 teams' services",
        "design the caching strategy for the whole platform: CDN, API gateway, per-service caches and the DB, and how invalidation flows between them",
        "What's the right way to structure auth across our web app, mobile app and 12 microservices? SSO, token formats, service-to-service auth.",
        "CI takes 45 minutes on every PR. Here's a full log:\n\n" + pad_to(ci_log, R, 40000)
        + "\n\nDesign a build and caching strategy for the monorepo so CI gets under 10 minutes. Consider remote caching, affected-only builds, splitting pipelines.",
        "design a disaster recovery setup for us: RPO 5 minutes, RTO 1 hour, two regions",
        "How should we architect billing so that usage events from all services are metered, aggregated and invoiced reliably?",
        "We keep getting cascading failures whenever the payments provider is slow:\n\n" + k8s_json_log(R, 40)
        + "\n\nHow should we redesign the service boundaries, timeouts and circuit breaking across the system so one slow dependency can't take everything down?",
        "Design the module layout for tiercli: where should routing, classification, pricing and the ledger live, and what is allowed to import what?",
        "Help us choose between serverless and kubernetes for the new analytics product: cost at our scale, cold starts, what the team knows.",
        "Design an audit logging system that every service writes to: tamper-evident, queryable, retained for 7 years.",
        "propose a multi-region active-active architecture for the public API",
        "how should we version our public API and our internal events going forward? we have 40 consumers",
        "We want to let customers run their own code on our platform (webhooks as functions). Design the sandboxing and execution architecture.",
        "write an ADR for moving from a shared database to database-per-service, with the migration plan",
        "design the data pipeline: app events to the warehouse, near-real-time dashboards, and backfills",
        "how should frontend state and routing be architected across our 4 micro-frontends?",
        "fix our architecture: every service calls every other service synchronously, and one slow service takes the whole site down. what should the target design be?",
        )

    # ------------------------------------------------------------------------------- cross_refactor
    add("cross_refactor",
        "migrate every service in the monorepo from requests to httpx",
        "rename UserId to AccountId everywhere: API schemas, DB models, frontend types and the protobufs",
        "move all the database access out of the view functions into a repository layer, across the whole app",
        "upgrade the codebase from SQLAlchemy 1.4 to 2.0-style queries (about 300 call sites in 40 modules)",
        "split utils.py (4000 lines) into a package of focused modules and update all the imports across the repo",
        "replace our homegrown logging wrapper with structlog in all services",
        "convert the whole frontend from JavaScript to TypeScript",
        "finish the Python 2 to 3 migration for the remaining 60 modules",
        "replace callbacks with async/await across all the node services",
        "extract the billing logic that's scattered through orders, users and invoices into one billing module and update every caller",
        "refactor the whole codebase to use dependency injection instead of the global singletons",
        "migrate all our React class components (about 120 files) to hooks",
        "change the error handling convention across the codebase: replace returned error codes with exceptions in all 30 modules",
        "We're renaming the product from Nimbus to Stratus. Update package names, imports, config keys and env var prefixes across all our repos.",
        "Move from Moment.js to date-fns across the app",
        "unify the three different HTTP client wrappers in our services into one shared library and switch every caller over",
        "migrate the settings from ad-hoc os.environ reads all over the codebase to a single pydantic Settings object",
        "replace the fix_* sanitizer helpers in every module with the new validation framework",
        "grep says:\n" + F(GREP_SEND) + "\nchange all of these to the new signature send(msg, *, retries=N) and update every caller across the repo",
        "convert all the unittest-style test classes across the repo to plain pytest functions and fixtures",
        "The core package is imported by everything and has circular imports with api and jobs. Restructure the packages across the codebase to break the cycles.",
        "Rename the docstring module to docs and update every import in the 5 repos that vendor it",
        )

    # ------------------------------------------------------------------------------------ algorithm
    add("algorithm",
        "implement a lock-free single-producer single-consumer ring buffer in C++",
        "Our dedup of customer records is O(n^2) with fuzzy matching on 2M rows. Design an algorithm that scales (blocking keys, LSH, something else?).",
        "write an interval tree supporting insert, delete and overlap queries in O(log n)",
        "Implement consistent hashing with virtual nodes so that rebalancing moves the minimum number of keys",
        "implement the Myers diff algorithm for our text editor",
        "come up with a scheduling algorithm that assigns 500 jobs to machines minimizing makespan, with per-machine memory limits",
        "implement a CRDT for collaborative text editing (RGA or similar)",
        "this is O(n^3) and times out on real inputs, find a better algorithm\n\n" + F(PY_CUBIC, "python"),
        "implement trie-based autocomplete with fuzzy matching (edit distance <= 2) that returns the top-k completions by frequency",
        "write a dependency resolver: compute the minimal set of package upgrades that satisfies all version constraints, or explain the conflict",
        "Implement a B+ tree with range scans for our embedded key-value store",
        "we need k nearest neighbours among 10M embedding vectors in under 10ms. design the index and implement the search",
        "implement shortest paths with time-dependent edge weights for the delivery routing service",
        "write a streaming algorithm to estimate p99 latency with bounded memory (t-digest or similar)",
        "implement a counting bloom filter that supports deletion, and derive its false positive rate",
        "devise an algorithm that lays out our org chart as a tidy tree: no overlaps, minimal width",
        "given a seat map and a list of group sizes, seat every group together so that occupancy is maximized. what's the algorithm?",
        "implement Raft leader election and log replication for our config store",
        "make find_matches faster, it's quadratic and takes 40 minutes on month-end data\n\n" + F(PY_QUADRATIC, "python"),
        "implement an efficient algorithm to detect cycles in the package dependency graph and report the shortest cycle",
        "implement an external merge sort for log files larger than memory",
        "we need a rate limiter that is exact over a sliding window with O(1) memory per client; work out the algorithm and implement it",
        )
    return T


SPLIT_SEED = 1729
TUNE_SHARE = 0.6


def main(argv: list[str] | None = None) -> None:
    import argparse
    import pathlib

    here = pathlib.Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description="write tasks_tune.jsonl and tasks_eval.jsonl")
    ap.add_argument("--out", type=pathlib.Path, default=here, help="directory to write to (default: tests/data)")
    here = ap.parse_args(argv).out
    tasks = build_tasks()
    rng = random.Random(SPLIT_SEED)
    rng.shuffle(tasks)  # ids carry no information about the type
    rows = [{"id": f"t{i + 1:04d}", "task": text, "task_type": tt, "label": LABEL_OF_TASK_TYPE[tt]}
            for i, (tt, text) in enumerate(tasks)]
    tune, evl = [], []
    for tt in LABEL_OF_TASK_TYPE:  # stratified random split: each type ~60/40
        group = [r for r in rows if r["task_type"] == tt]
        rng.shuffle(group)
        k = round(len(group) * TUNE_SHARE)
        tune += group[:k]
        evl += group[k:]
    for name, part in (("tasks_tune.jsonl", tune), ("tasks_eval.jsonl", evl)):
        part.sort(key=lambda r: r["id"])
        with open(here / name, "w", encoding="utf-8") as fh:
            for r in part:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{name}: {len(part)} tasks")


if __name__ == "__main__":
    main()
