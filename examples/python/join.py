"""A join: `python join.py USERS ORDERS`, both `id<TAB>...` text files:
users are `id<TAB>name`, orders `user_id<TAB>amount`. Prints the total
amount per user name, sorted by name; `--plain` computes the same in
plain Python."""

import collections
import sys

import shoal


def fields(line):
    key, _, rest = line.partition("\t")
    return int(key), rest


def order(line):
    user, amount = fields(line)
    return user, int(amount)


def plain(users_file, orders_file):
    with open(users_file) as f:
        users = collections.defaultdict(list)
        for line in f.read().splitlines():
            k, name = fields(line)
            users[k].append(name)
    totals = collections.Counter()
    with open(orders_file) as f:
        for line in f.read().splitlines():
            k, amount = order(line)
            for name in users.get(k, []):
                totals[name] += amount
    for name, total in sorted(totals.items()):
        print(f"{name}\t{total}")


def main():
    if "--plain" in sys.argv:
        return plain(*[a for a in sys.argv[1:] if a != "--plain"])
    with shoal.Context() as sc:
        if len(sc.args) != 2:
            sys.exit("usage: join.py USERS ORDERS")
        users = sc.text_file(sc.args[0]).map(fields)
        orders = sc.text_file(sc.args[1]).map(order)
        totals = (users.join(orders)
                       .map(lambda kv: kv[1])
                       .reduce_by_key(lambda a, b: a + b)
                       .sort_by_key()
                       .collect())
        for name, total in totals:
            print(f"{name}\t{total}")


if __name__ == "__main__":
    main()
