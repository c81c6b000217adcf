package pa

import (
	"slices"
	"testing"
	"time"
)

func TestParseCommand(t *testing.T) {
	now := time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC) // a Monday
	tests := []struct {
		msg  string
		want Command // Kind, Text, Connector, Items, List, Email, Phone, Field are compared
		at   string  // "2006-01-02 15:04" when a time must be found
	}{
		{"remind me to call mom at 5pm tomorrow", Command{Kind: CmdRemind, Text: "call mom", Connector: "to"}, "2025-03-04 17:00"},
		{"Please remind me in 10 minutes to take the pizza out.", Command{Kind: CmdRemind, Text: "take the pizza out", Connector: "to"}, "2025-03-03 10:10"},
		{"can you remind me about the dentist on Friday at 9am", Command{Kind: CmdRemind, Text: "the dentist", Connector: "about"}, "2025-03-07 09:00"},
		{"remind me to water the plants", Command{Kind: CmdRemind, Text: "water the plants", Connector: "to"}, ""},
		{"what are my reminders", Command{Kind: CmdListReminders}, ""},
		{"cancel the reminder to call mom", Command{Kind: CmdCancelReminder, Text: "call mom"}, ""},
		{"add milk to my shopping list", Command{Kind: CmdAddTask, Items: []string{"milk"}, List: "shopping"}, ""},
		{"add eggs, bread and butter to the grocery list", Command{Kind: CmdAddTask, Items: []string{"eggs", "bread", "butter"}, List: "shopping"}, ""},
		{"put renew passport on my to-do list", Command{Kind: CmdAddTask, Items: []string{"renew passport"}, List: "todo"}, ""},
		{"add a task to pay rent by friday", Command{Kind: CmdAddTask, Items: []string{"pay rent"}, List: "todo"}, "2025-03-07 00:00"},
		{"list my tasks", Command{Kind: CmdListTasks}, ""},
		{"what's on my shopping list?", Command{Kind: CmdListTasks, List: "shopping"}, ""},
		{"show my to-dos", Command{Kind: CmdListTasks, List: "todo"}, ""},
		{"what do I need to buy", Command{Kind: CmdListTasks, List: "shopping"}, ""},
		{"mark milk as done", Command{Kind: CmdCompleteTask, Items: []string{"milk"}}, ""},
		{"I bought eggs and bread", Command{Kind: CmdCompleteTask, Items: []string{"eggs", "bread"}}, ""},
		{"tick off butter", Command{Kind: CmdCompleteTask, Items: []string{"butter"}}, ""},
		{"remove milk from my shopping list", Command{Kind: CmdRemoveTask, Items: []string{"milk"}, List: "shopping"}, ""},
		{"note: the gate code is 4512", Command{Kind: CmdAddNote, Text: "the gate code is 4512"}, ""},
		{"take a note that Ann likes tulips", Command{Kind: CmdAddNote, Text: "Ann likes tulips"}, ""},
		{"show my notes", Command{Kind: CmdListNotes}, ""},
		{"find notes about wifi", Command{Kind: CmdListNotes, Text: "wifi"}, ""},
		{"what's on my calendar on Friday", Command{Kind: CmdAgenda}, "2025-03-07 00:00"},
		{"what do I have tomorrow", Command{Kind: CmdAgenda}, "2025-03-04 00:00"},
		{"schedule a meeting with Ann on Monday at 3pm for an hour", Command{Kind: CmdSchedule, Text: "Meeting with Ann"}, "2025-03-03 15:00"},
		{"add lunch with Bob to my calendar on Friday at noon", Command{Kind: CmdSchedule, Text: "Lunch with Bob"}, "2025-03-07 12:00"},
		{"book a dentist appointment on March 12 at 8:30am", Command{Kind: CmdSchedule, Text: "Dentist appointment"}, "2025-03-12 08:30"},
		{"add contact John Smith john@example.com +1 555 0100", Command{Kind: CmdAddContact, Text: "John Smith", Email: "john@example.com", Phone: "+1 555 0100"}, ""},
		{"save Ann Lee to my contacts, email ann@example.org", Command{Kind: CmdAddContact, Text: "Ann Lee", Email: "ann@example.org"}, ""},
		{"what's John's number", Command{Kind: CmdFindContact, Text: "John", Field: "phone"}, ""},
		{"what is the email of Ann Lee?", Command{Kind: CmdFindContact, Text: "Ann Lee", Field: "email"}, ""},
		{"list my contacts", Command{Kind: CmdListContacts}, ""},
		{"hello", Command{Kind: CmdGreeting}, ""},
		{"what can you do?", Command{Kind: CmdHelp}, ""},
		{"the weather is nice", Command{Kind: CmdUnknown}, ""},
		{"", Command{Kind: CmdUnknown}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			got := ParseCommand(tt.msg, now)
			if got.Kind != tt.want.Kind || got.Text != tt.want.Text || got.Connector != tt.want.Connector || !slices.Equal(got.Items, tt.want.Items) ||
				got.List != tt.want.List || got.Email != tt.want.Email || got.Phone != tt.want.Phone || got.Field != tt.want.Field {
				t.Fatalf("ParseCommand(%q) =\n %+v\nwant\n %+v", tt.msg, got, tt.want)
			}
			if tt.at == "" {
				return
			}
			want, _ := time.ParseInLocation("2006-01-02 15:04", tt.at, time.UTC)
			if !got.HasWhen || !got.When.At.Equal(want) {
				t.Fatalf("when = %v (found %v), want %v", got.When.At, got.HasWhen, want)
			}
		})
	}
}
