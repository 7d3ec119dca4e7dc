// Command fraud scores a customer order for fraud risk from its amounts
// alone. It is the example of ward's data partitioning and tokenization: its
// ward.json lets its tasks see only the order's total, currency, item
// quantities and prices and the customer's id, and the id only as a token
// (tok_…). The customer's name, email, address and card never reach it, nor
// ward's store.
//
// Given
//
//	{"order":{"total":1249.5,"currency":"EUR","items":[{"qty":1,"price":1199},{"qty":2,"price":25.25}]},
//	 "customer":{"id":"tok_…"}}
//
// it returns {"customer":"tok_…","score":45,"flags":["high_total","expensive_item"]}:
// the customer as received, a score from 0 (no sign of risk) to 100, and the
// rules that added to it.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/wardhq/ward/task"
)

// order is the part of the payload the function reads.
type order struct {
	Order *struct {
		Total    *float64 `json:"total"`
		Currency string   `json:"currency"`
		Items    []item   `json:"items"`
	} `json:"order"`
	Customer struct {
		ID string `json:"id"`
	} `json:"customer"`
}

// item is one line of an order.
type item struct {
	Qty   float64 `json:"qty"`
	Price float64 `json:"price"`
}

// response is the result.
type response struct {
	Customer string   `json:"customer"`
	Score    int      `json:"score"`
	Flags    []string `json:"flags"`
}

// rule is one risk signal: its flag and what it adds to the score.
type rule struct {
	flag   string
	points int
}

// The rules, in the order their flags are listed.
var (
	ruleVeryHighTotal   = rule{"very_high_total", 50} // total of 5000 or more
	ruleHighTotal       = rule{"high_total", 30}      // total of 1000 or more
	ruleExpensiveItem   = rule{"expensive_item", 15}  // an item priced 500 or more
	ruleBulkQuantity    = rule{"bulk_quantity", 15}   // 10 units or more
	ruleTotalMismatch   = rule{"total_mismatch", 25}  // the items do not add up to the total
	ruleNoItems         = rule{"no_items", 20}        // a total without items
	ruleUnusualCurrency = rule{"unusual_currency", 10}
	ruleNoCustomer      = rule{"no_customer", 20}
)

// Thresholds of the rules, in the order's currency.
const (
	veryHighTotal  = 5000
	highTotal      = 1000
	expensivePrice = 500
	bulkUnits      = 10
	maxScore       = 100
)

// Bounds on amounts, so that sums in cents stay exact in an int64.
const (
	maxAmount = 1e9 // totals and prices
	maxQty    = 1e6 // units of one item
)

// usualCurrencies are the currencies the shop sells in.
var usualCurrencies = []string{"EUR", "GBP", "USD"}

// cents converts an amount to whole cents.
func cents(v float64) int64 { return int64(math.Round(v * 100)) }

// score computes the risk of a raw payload.
func score(payload []byte) (response, error) {
	var o order
	if len(bytes.TrimSpace(payload)) == 0 {
		return response{}, errors.New(`empty payload: want {"order":{"total":…,"items":[…]},"customer":{"id":…}}`)
	}
	if err := json.Unmarshal(payload, &o); err != nil {
		return response{}, fmt.Errorf("payload must be a JSON object with an order: %w", err)
	}
	if o.Order == nil || o.Order.Total == nil {
		return response{}, errors.New("payload has no order.total")
	}
	total := *o.Order.Total
	if total < 0 || total > maxAmount {
		return response{}, fmt.Errorf("order.total must be between 0 and %g", float64(maxAmount))
	}
	var (
		units    float64
		maxPrice float64
		sum      int64 // of the items, in cents
	)
	for i, it := range o.Order.Items {
		switch {
		case it.Qty < 0 || it.Qty > maxQty || it.Qty != math.Trunc(it.Qty):
			return response{}, fmt.Errorf("order.items[%d].qty must be a whole number between 0 and %g", i, float64(maxQty))
		case it.Price < 0 || it.Price > maxAmount:
			return response{}, fmt.Errorf("order.items[%d].price must be between 0 and %g", i, float64(maxAmount))
		}
		units += it.Qty
		maxPrice = max(maxPrice, it.Price)
		if sum <= cents(maxAmount) { // past it, the sum cannot match the total anyway
			sum += int64(it.Qty) * cents(it.Price)
		}
	}

	var hits []rule
	switch {
	case total >= veryHighTotal:
		hits = append(hits, ruleVeryHighTotal)
	case total >= highTotal:
		hits = append(hits, ruleHighTotal)
	}
	if maxPrice >= expensivePrice {
		hits = append(hits, ruleExpensiveItem)
	}
	if units >= bulkUnits {
		hits = append(hits, ruleBulkQuantity)
	}
	switch {
	case len(o.Order.Items) == 0:
		hits = append(hits, ruleNoItems)
	case sum != cents(total):
		hits = append(hits, ruleTotalMismatch)
	}
	if !slices.Contains(usualCurrencies, o.Order.Currency) {
		hits = append(hits, ruleUnusualCurrency)
	}
	if strings.TrimSpace(o.Customer.ID) == "" {
		hits = append(hits, ruleNoCustomer)
	}

	resp := response{Customer: o.Customer.ID, Flags: []string{}}
	for _, h := range hits {
		resp.Score += h.points
		resp.Flags = append(resp.Flags, h.flag)
	}
	resp.Score = min(resp.Score, maxScore)
	return resp, nil
}

// received describes which fields a payload holds, two levels deep, such as
// "customer{id} order{currency items total}": never a value. The log shows
// that the function saw only what its input rules keep.
func received(payload []byte) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(payload, &top) != nil {
		return "(not a JSON object)"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(top)) {
		var inner map[string]json.RawMessage
		if json.Unmarshal(top[k], &inner) == nil && inner != nil {
			parts = append(parts, k+"{"+strings.Join(slices.Sorted(maps.Keys(inner)), " ")+"}")
			continue
		}
		parts = append(parts, k)
	}
	return strings.Join(parts, " ")
}

func main() {
	payload, err := task.Payload()
	if err != nil {
		task.Fail(err)
	}
	task.Logf("received %s", received(payload))
	resp, err := score(payload)
	if err != nil {
		task.Fail(err)
	}
	task.Logf("customer %s: score %d %v", resp.Customer, resp.Score, resp.Flags)
	if err := task.Result(resp); err != nil {
		task.Fail(err)
	}
}
