package admin

import (
	"testing"

	"github.com/passerelle/passerelle/governance/policy"
)

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    policy.Rule
		wantErr bool
	}{
		{args: []string{"phone_prefix=+7"}, want: policy.Rule{Action: policy.ActionDeny, PhonePrefix: "+7"}},
		{args: []string{"telegram_user_id=42", "network=telegram"}, want: policy.Rule{Action: policy.ActionDeny, TelegramUserID: 42, Network: "telegram"}},
		{
			args: []string{"telegram_username=ex_partner", "comment=left", "the", "project"},
			want: policy.Rule{Action: policy.ActionDeny, TelegramUsername: "ex_partner", Comment: "left the project"},
		},
		{args: nil, wantErr: true},
		{args: []string{"phone"}, wantErr: true},
		{args: []string{"telegram_user_id=forty-two"}, wantErr: true},
		{args: []string{"colour=blue"}, wantErr: true},
	} {
		got, err := ParseRule(policy.ActionDeny, tc.args)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseRule(%q) = %+v, want an error", tc.args, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRule(%q) = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
}
