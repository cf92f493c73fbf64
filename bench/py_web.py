"""bench/py_web.py - the webservice example's endpoints in Flask, written
as the tutorial writes them (../shared/PYTHON.md row 11): each request
makes a ThreadPoolExecutor(10) and fetches each user on a thread of it,
a blocking 20 ms wait standing for the database, as in the troupe
example. bench/bench_http runs it under gunicorn with threads.

  GET /api/v1/users?user_ids=1,2,3   the users, in the order asked
  GET /health
"""
import concurrent.futures as cf
import csv
import os
import time

from flask import Flask, jsonify, request

app = Flask(__name__)

USERS = {}
with open(os.environ.get("TROUPE_USERS",
                         os.path.join(os.path.dirname(__file__), "..",
                                      "examples", "users.csv"))) as f:
    for row in csv.DictReader(f):
        USERS[int(row["id"])] = {"id": int(row["id"]), "name": row["name"],
                                 "email": row["email"]}


def fetch_user(uid):
    time.sleep(0.020)
    try:
        return USERS[int(uid)]
    except (KeyError, ValueError):
        return {"error": "no such user"}


@app.route("/api/v1/users")
def users():
    ids = request.args.get("user_ids")
    if not ids:
        return jsonify({"error": "user_ids=1,2,3 is needed"}), 400
    with cf.ThreadPoolExecutor(max_workers=10) as ex:
        result = list(ex.map(fetch_user, ids.split(",")))
    return jsonify(result)


@app.route("/health")
def health():
    return jsonify({"status": "ok"})
