package erc20

import (
	"testing"
	"time"

	"github.com/caddy-checkout/checkout/money"
	"github.com/caddy-checkout/checkout/order"
)

// TestRetentionKeepsA0xBTCpayOrderOne: erasing the shop's data of a
// 0xBTCpay order leaves "null" in its place, so that the order is still
// found by status.json and still gets its postback.
func TestRetentionKeepsA0xBTCpayOrderOne(t *testing.T) {
	now := time.Now()
	o, err := order.New(order.Intake{Key: order.Key{Site: "s", ID: "x1"}, Amount: money.MustParse("1", "0xBTC"), Provider: Name,
		ProviderData: map[string]string{keyOxbtcpayData: `{"customer":"alice@example.com"}`, keyOxbtcpayPostback: "https://shop.example/pb"}}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	erased := o.ErasePersonal(nil, (*ERC20)(nil).Personal, now)
	pd := o.Attempts[0].ProviderData
	if !isOxbtcpay(o) || pd[keyOxbtcpayData] != "null" || pd[keyOxbtcpayPostback] != "https://shop.example/pb" || len(erased) != 1 {
		t.Fatalf("after retention: 0xBTCpay %v, provider data %v, erased %v", isOxbtcpay(o), pd, erased)
	}
}
