// Command pairsgo counts the products and pairs of products bought together in the order
// lines of $DATABASE_URL in Go, streaming the lines sorted by order: the alternative to the
// complements build's SQL that scripts/bench/complements.sh measures it against. It prints
// what it counted and the CPU time it used.
package main

import (
	"database/sql"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	_ "github.com/lib/pq"
)

func main() {
	if err := run(os.Getenv("DATABASE_URL")); err != nil {
		fmt.Fprintln(os.Stderr, "pairsgo:", err)
		os.Exit(1)
	}
}

func run(url string) error {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return err
	}
	defer db.Close()
	started := time.Now()
	rows, err := db.Query(`SELECT order_id, sku FROM order_items
		WHERE occurred_at >= now() - interval '90 days' ORDER BY order_id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	ids := map[string]uint32{}
	items := map[uint32]uint32{}
	pairs := map[uint64]uint32{}
	var order string
	var basket []uint32
	orders := 0
	flush := func() {
		slices.Sort(basket)
		basket = slices.Compact(basket)
		for i, a := range basket {
			items[a]++
			for _, b := range basket[i+1:] {
				pairs[uint64(a)<<32|uint64(b)]++
			}
		}
		orders++
		basket = basket[:0]
	}
	var o, s []byte
	for rows.Next() {
		if err := rows.Scan(&o, &s); err != nil {
			return err
		}
		if string(o) != order {
			if order != "" {
				flush()
			}
			order = string(o)
		}
		id, ok := ids[string(s)]
		if !ok {
			id = uint32(len(ids))
			ids[string(s)] = id
		}
		basket = append(basket, id)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if order != "" {
		flush()
	}
	kept := 0
	for _, c := range pairs {
		if c >= 3 {
			kept++
		}
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Printf("orders %d, products %d, pairs %d (%d in 3+ orders); wall %.1f s, Go CPU %.1f s, max RSS %d MB\n",
		orders, len(items), len(pairs), kept, time.Since(started).Seconds(), cpu.Seconds(), ru.Maxrss/1024)
	return nil
}
