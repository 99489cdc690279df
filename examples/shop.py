#!/usr/bin/env python3
"""A small shop on recsys: train models, recommend with item names, run an A/B test.

    python3 examples/shop.py [--keep] [CONNINFO]

CONNINFO is a libpq connection string ("host=/var/run/postgresql dbname=shop") or
URI; without it libpq's PG* environment variables apply (PGHOST, PGDATABASE, ...).
Needs psycopg 3 (Debian: apt install python3-psycopg) and a database where recsys
is installed or the user may install it. It creates the tables shop_items and
shop_events (or uses them if they exist), the models shop_knn and shop_ials and
the experiment shop_homepage, and drops what it created at the end unless --keep.
"""
import argparse
import random
import sys

import psycopg
from psycopg.types.json import Jsonb

MODELS = ("shop_knn", "shop_ials")
EXPERIMENT = "shop_homepage"
CATALOGUE = {  # item ids are numbered in this order, from 1
    "books": ["The Quiet Harbour", "A Map of Small Things", "Winter Orchard", "Paper Moons",
              "The Glass Engineer", "Salt and Iron", "Letters to Nobody", "The Long Field",
              "North of Noon", "The Lamplighter"],
    "music": ["Blue Night (LP)", "Songs for Trains", "Live at the Lighthouse", "Slow Tide",
              "Northern Strings", "Brass and Rain", "Piano Rooms", "Field Recordings",
              "Midnight Choir", "Desert Radio"],
    "kitchen": ["Cast Iron Pan", "Chef's Knife", "Pepper Mill", "Bread Basket", "Tea Kettle",
                "Espresso Pot", "Wooden Spoons", "Salad Bowl", "Cutting Board", "Spice Rack"],
}
ITEMS = [(cat, title) for cat, titles in CATALOGUE.items() for title in titles]
USERS = 300


def favourite(user_id):
    """The simulated shoppers: each one prefers one category."""
    return list(CATALOGUE)[user_id % len(CATALOGUE)]


def create_tables(conn, rng):
    """Create and fill shop_items and shop_events; False if they exist already."""
    if conn.execute("SELECT to_regclass('shop_items') IS NOT NULL"
                    " AND to_regclass('shop_events') IS NOT NULL").fetchone()[0]:
        return False
    with conn.transaction():  # all or nothing: no half-made tables after an error
        conn.execute("CREATE TABLE shop_items (item_id int PRIMARY KEY, title text, category text)")
        conn.execute("CREATE TABLE shop_events (user_id int, item_id int REFERENCES shop_items,"
                     " bought_at timestamptz DEFAULT now())")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO shop_items VALUES (%s, %s, %s)",
                            [(i, title, cat) for i, (cat, title) in enumerate(ITEMS, 1)])
            # Every shopper buys 5 items, mostly of their favourite category.
            # COPY is the fast way to load many rows.
            with cur.copy("COPY shop_events (user_id, item_id) FROM STDIN") as copy:
                for user in range(1, USERS + 1):
                    bought = set()
                    while len(bought) < 5:
                        cat = favourite(user) if rng.random() < 0.8 else rng.choice(list(CATALOGUE))
                        bought.add(rng.choice([i for i, (c, _) in enumerate(ITEMS, 1) if c == cat]))
                    for item in sorted(bought):
                        copy.write_row((user, item))
    return True


def show_recommendations(conn, user, model):
    """recommend() gives item ids and scores (not the items bought); a join adds the titles."""
    rows = conn.execute(
        "SELECT i.title, i.category, r.score"
        " FROM recommend(%s, 5, model => %s) AS r JOIN shop_items AS i USING (item_id)"
        " ORDER BY r.score DESC, r.item_id", [user, model]).fetchall()
    print(f"Recommendations for user {user} (likes {favourite(user)}), model {model}:")
    for rank, (title, category, score) in enumerate(rows, 1):
        print(f"  {rank}. {title} [{category}] {score:.3f}")
    hits = sum(category == favourite(user) for _, category, _ in rows)
    print(f"  {hits} of {len(rows)} from the favourite category\n")


def run_experiment(conn, rng):
    """Split the shoppers 50/50 between the two models and log what they do."""
    conn.execute("SELECT drop_experiment(%s, if_exists => true)", [EXPERIMENT])  # of a --keep run
    conn.execute("SELECT create_experiment(%s, %s)", [EXPERIMENT, Jsonb([
        {"name": "knn", "model": "shop_knn", "weight": 50},  # the first one is the control
        {"name": "ials", "model": "shop_ials", "weight": 50}])])
    for user in range(1, USERS + 1):
        # The user's variant serves the list, and the list is logged as an exposure.
        shown = conn.execute("SELECT r.item_id, i.category FROM recommend_experiment(%s, %s, 3)"
                             " AS r JOIN shop_items AS i USING (item_id)",
                             [EXPERIMENT, user]).fetchall()
        # The simulated shopper clicks, now and then, an item of their favourite category.
        liked = [item for item, category in shown if category == favourite(user)]
        if liked and rng.random() < 0.6:
            conn.execute("SELECT log_outcome(%s, %s, %s, 'click')", [EXPERIMENT, user, liked[0]])
    print(f"Experiment {EXPERIMENT}, users who clicked:")
    print("  variant  users  clicked  rate   95% interval    p-value")
    for variant, users, clicked, rate, low, high, p in conn.execute(
            "SELECT variant, exposed_users, converted_users, conversion_rate,"
            "       conversion_low, conversion_high, p_value"
            " FROM experiment_report(%s)", [EXPERIMENT]):
        p = "(control)" if p is None else f"{p:.3g}"
        print(f"  {variant:7}  {users:5}  {clicked:7}  {rate:.3f}  [{low:.3f}, {high:.3f}]  {p}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("conninfo", nargs="?", default="", help="libpq connection string")
    parser.add_argument("--keep", action="store_true", help="keep what it created")
    args = parser.parse_args()
    rng = random.Random(42)  # the same purchases and clicks on every run
    # autocommit: each statement is its own transaction, as CALL train() wants.
    with psycopg.connect(args.conninfo, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS recsys")
        created_tables = False
        try:
            created_tables = create_tables(conn, rng)
            if not created_tables:
                print("Using the existing tables shop_items and shop_events\n")
            conn.execute("CALL train(%s, 'shop_events', method => 'item_knn')", [MODELS[0]])
            conn.execute("CALL train(%s, 'shop_events', method => 'ials', factors => 8,"
                         " regularization => 1, seed => 1)", [MODELS[1]])
            for model in MODELS:
                show_recommendations(conn, 1, model)
            run_experiment(conn, rng)
        finally:
            if not args.keep:  # the experiment (with its logs), the models, our tables
                conn.execute("SELECT drop_experiment(%s, if_exists => true)", [EXPERIMENT])
                for model in MODELS:
                    conn.execute("SELECT drop_model(%s, if_exists => true)", [model])
                if created_tables:
                    conn.execute("DROP TABLE shop_events, shop_items")


if __name__ == "__main__":
    try:
        main()
    except psycopg.Error as e:
        sys.exit(f"shop.py: {e}")
