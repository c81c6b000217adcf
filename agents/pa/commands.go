package pa

import (
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kinds of command the offline parser understands.
const (
	CmdRemind         = "remind"
	CmdListReminders  = "list_reminders"
	CmdCancelReminder = "cancel_reminder"
	CmdAddTask        = "add_task"
	CmdListTasks      = "list_tasks"
	CmdCompleteTask   = "complete_task"
	CmdRemoveTask     = "remove_task"
	CmdAddNote        = "add_note"
	CmdListNotes      = "list_notes"
	CmdSchedule       = "schedule"
	CmdAgenda         = "agenda"
	CmdAddContact     = "add_contact"
	CmdFindContact    = "find_contact"
	CmdListContacts   = "list_contacts"
	CmdGreeting       = "greeting"
	CmdHelp           = "help"
	CmdUnknown        = "unknown"
)

// Command is what a message asks for, as the offline parser reads it.
type Command struct {
	Kind string
	// Text is the reminder's text, the note's body, the event's title, the contact's name, or
	// what to look for.
	Text string
	// Connector is how the reminder was worded ("to", "about", "that"), to word it back.
	Connector string
	// Items are the tasks to add, complete or remove ("milk, eggs and bread").
	Items []string
	// List is the task list named, lower case; "" when none was.
	List string
	// When is the time the message names, if HasWhen.
	When    When
	HasWhen bool
	// Email and Phone are a new contact's details.
	Email, Phone string
	// Field is what a contact lookup asks for: "phone", "email" or "" (everything).
	Field string
}

var (
	politePrefix = regexp.MustCompile(`(?i)^(?:(?:hey|hi|ok|okay|so)\b[ ,]*)?(?:(?:please|pa)\b[ ,]*)?(?:(?:can|could|would|will) you\s+(?:please\s+)?)?(?:please\s+)?`)
	politeSuffix = regexp.MustCompile(`(?i)[ ,]*(?:please|thanks|thank you)?[ .!?]*$`)

	remindRe       = regexp.MustCompile(`(?i)^(?:remind me|set (?:a |an )?reminder|create (?:a )?reminder|add (?:a )?reminder|new reminder|reminder)\b[:,]?\s*(.*)$`)
	remindConnect  = regexp.MustCompile(`(?i)^(to|about|that|of|for)\s+(.*)$`)
	listReminders  = regexp.MustCompile(`(?i)^(?:(?:list|show|read|tell)(?: me)?|what are|what're|do i have any|any)(?: all)?(?: of)? (?:my |the )?(?:upcoming |pending )?reminders\b|^what reminders do i have\b|^my reminders$`)
	cancelReminder = regexp.MustCompile(`(?i)^(?:cancel|delete|remove|forget)(?: the| my)? reminder(?:s)?\s*(?:to|about|for|that|of)?\s*(.*)$`)

	addContactRe = regexp.MustCompile(`(?i)^(?:add|save|create|new)(?: a)?(?: new)? contact\b[:,]?\s*(.+)$`)
	addToContact = regexp.MustCompile(`(?i)^(?:add|save) (.+?) to (?:my )?(?:contacts|address book)\b[:,]?\s*(.*)$`)
	possessiveRe = regexp.MustCompile(`(?i)^(?:what(?:'s| is)|tell me|give me|find|show(?: me)?|get)\s+(.+?)(?:'s|’s|s') (phone number|phone|number|mobile|cell|email address|email|e-mail|contact details|details|contact info)\b`)
	ofContactRe  = regexp.MustCompile(`(?i)^(?:what(?:'s| is)|tell me|give me|find|show(?: me)?|get)\s+the (phone number|phone|number|mobile|email address|email|contact details|details) (?:of|for) (.+)$`)
	findContact  = regexp.MustCompile(`(?i)^(?:find|look up|lookup|show(?: me)?|search(?: for)?)\s+(?:the )?contact(?:s)?(?: for| named| called)?\s+(.+)$|^who is (.+?) in my contacts$`)
	listContacts = regexp.MustCompile(`(?i)^(?:(?:list|show|read)(?: me)?|what are|who are)(?: all)? (?:my )?contacts\b|^my contacts$`)

	noteRe      = regexp.MustCompile(`(?i)^(?:note|take (?:a )?note|make (?:a )?note|add (?:a )?note|new note|write down|jot down|remember)\b(?: that| of| to)?\s*[:,-]?\s*(.+)$`)
	listNotes   = regexp.MustCompile(`(?i)^(?:(?:list|show|read|open)(?: me)?|what are|what're)(?: all)?(?: of)? (?:my |the )?notes\b|^my notes$|^what did i note\b`)
	searchNotes = regexp.MustCompile(`(?i)^(?:find|search|look for|show(?: me)?)(?: my)? notes? (?:about|on|with|for|mentioning) (.+)$`)

	agendaRe   = regexp.MustCompile(`(?i)\b(?:calendar|schedule|agenda|diary)\b|^what do i have\b|^am i (?:free|busy)\b|^do i have (?:any )?(?:meetings|appointments|events)\b|^(?:any|list|show)(?: my)? (?:meetings|appointments|events)\b`)
	askRe      = regexp.MustCompile(`(?i)^(?:what|what's|whats|when|show|list|read|tell|do i|am i|any|is there|are there|check|how does|how's|my)\b`)
	scheduleRe = regexp.MustCompile(`(?i)^(?:schedule|book|set up|arrange|plan|create|add|put|new|i have|there's|there is)\b[:,]?\s*(.*)$`)
	eventLabel = regexp.MustCompile(`(?i)^(?:an? )?(?:new )?(?:calendar )?event\b(?:\s+(?:called|named|for))?[:,]?\s*`)
	calendarTo = regexp.MustCompile(`(?i)\s*\b(?:to|on|in|into)\s+(?:my|the)\s+(?:calendar|schedule|agenda|diary)\b`)
	eventWords = regexp.MustCompile(`(?i)\b(?:meeting|appointment|event|call|lunch|dinner|breakfast|interview|party|session|class|flight|calendar|standup|stand-up|sync|review|dentist|doctor)\b`)

	addToList   = regexp.MustCompile(`(?i)^(?:add|put|get|buy|include)\s+(.+?)\s+(?:to|on|onto|in|into)\s+(?:my|the|our)\s+(.+?)\s*list$`)
	addToMyList = regexp.MustCompile(`(?i)^(?:add|put)\s+(.+?)\s+(?:to|on|onto)\s+(?:my|the) (?:list|tasks|to-?dos)$`)
	addTaskRe   = regexp.MustCompile(`(?i)^(?:add|create|new)(?: a)? (?:task|to-?do)\b[:,]?\s*(?:to\s+)?(.+)$|^(?:task|to-?do|todo)\s*:\s*(.+)$`)
	listTasksRe = regexp.MustCompile(`(?i)^(?:(?:list|show|read|tell|give)(?: me)?|what(?:'s| is| are)(?: on)?|what do i have on|check)(?: all)?(?: of)? (?:my |the |our )?(.*?)\s*(list|tasks|to-?dos)$|^my (?:(.+?) )?(list|tasks|to-?dos)$`)
	needToRe    = regexp.MustCompile(`(?i)^what (?:do|should) i (?:need|have) to (do|buy|get)\b`)
	completeRe  = regexp.MustCompile(`(?i)^(?:mark|set)\s+(.+?)\s+(?:as\s+)?(?:done|complete|completed|finished|bought)$|^(?:tick|check|cross|strike)\s+(?:off\s+)?(.+?)(?:\s+off)?(?:\s+(?:from|on)\s+(?:my|the)\s+.*?list)?$|^(?:complete|finish)(?: task)?\s+(.+)$|^(?:i\s+)?(?:bought|got|did|finished|completed|done with)\s+(.+)$|^(.+?)\s+(?:is|are)\s+(?:done|bought|finished|complete)$`)
	removeRe    = regexp.MustCompile(`(?i)^(?:remove|delete|take|drop)\s+(.+?)\s+(?:from|off)\s+(?:my|the|our)\s+(.+?)\s*list$|^(?:remove|delete)(?: the)? task\s+(.+)$`)

	greetingRe = regexp.MustCompile(`(?i)^(?:hi|hello|hey|good (?:morning|afternoon|evening)|howdy|yo)\b[ !.,]*(?:there)?[ !.]*$`)
	helpRe     = regexp.MustCompile(`(?i)^(?:help|what can you do|how do(?:es)? (?:this|it|you) work|what do you do|commands)\b`)

	emailRe = regexp.MustCompile(`[^\s@,;<>()]+@[^\s@,;<>()]+\.[A-Za-z]{2,}`)
	phoneRe = regexp.MustCompile(`\+?\(?\d[\d\s().-]{4,}\d`)
	itemSep = regexp.MustCompile(`(?i)\s*(?:,\s*(?:and\s+)?|\s+and\s+|\s*&\s*)`)
)

// ParseCommand reads what a message asks for, resolving any time it names against now (in
// the user's time zone).
func ParseCommand(msg string, now time.Time) Command {
	text := strings.TrimSpace(msg)
	text = politePrefix.ReplaceAllString(text, "")
	text = strings.TrimSpace(politeSuffix.ReplaceAllString(text, ""))
	if text == "" {
		return Command{Kind: CmdUnknown}
	}
	switch {
	case greetingRe.MatchString(text):
		return Command{Kind: CmdGreeting}
	case helpRe.MatchString(text):
		return Command{Kind: CmdHelp}
	}
	if c, ok := parseContact(text); ok {
		return c
	}
	if c, ok := parseReminder(text, now); ok {
		return c
	}
	if m := searchNotes.FindStringSubmatch(text); m != nil {
		return Command{Kind: CmdListNotes, Text: cleanItem(m[1])}
	}
	if listNotes.MatchString(text) {
		return Command{Kind: CmdListNotes}
	}
	if m := noteRe.FindStringSubmatch(text); m != nil {
		return Command{Kind: CmdAddNote, Text: strings.TrimSpace(m[1])}
	}
	if c, ok := parseTasks(text, now); ok {
		return c
	}
	if c, ok := parseCalendar(text, now); ok {
		return c
	}
	return Command{Kind: CmdUnknown}
}

func parseReminder(text string, now time.Time) (Command, bool) {
	if listReminders.MatchString(text) {
		return Command{Kind: CmdListReminders}, true
	}
	if m := cancelReminder.FindStringSubmatch(text); m != nil {
		return Command{Kind: CmdCancelReminder, Text: cleanItem(m[1])}, true
	}
	m := remindRe.FindStringSubmatch(text)
	if m == nil {
		return Command{}, false
	}
	c := Command{Kind: CmdRemind}
	c.When, c.Text, c.HasWhen = ParseWhen(m[1], now)
	c.Text = strings.TrimSpace(c.Text)
	if cm := remindConnect.FindStringSubmatch(c.Text); cm != nil {
		c.Connector, c.Text = strings.ToLower(cm[1]), strings.TrimSpace(cm[2])
	}
	if c.Connector == "" || c.Connector == "for" || c.Connector == "of" {
		c.Connector = "about"
	}
	// "remind me to call mom at 5pm tomorrow to" leaves trailing glue behind.
	c.Text = strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(c.Text, " to"), " at"))
	return c, true
}

func parseContact(text string) (Command, bool) {
	if listContacts.MatchString(text) {
		return Command{Kind: CmdListContacts}, true
	}
	if m := possessiveRe.FindStringSubmatch(text); m != nil {
		return Command{Kind: CmdFindContact, Text: cleanItem(m[1]), Field: contactField(m[2])}, true
	}
	if m := ofContactRe.FindStringSubmatch(text); m != nil {
		return Command{Kind: CmdFindContact, Text: cleanItem(m[2]), Field: contactField(m[1])}, true
	}
	if m := findContact.FindStringSubmatch(text); m != nil {
		return Command{Kind: CmdFindContact, Text: cleanItem(m[1] + m[2])}, true
	}
	details := ""
	if m := addContactRe.FindStringSubmatch(text); m != nil {
		details = m[1]
	} else if m := addToContact.FindStringSubmatch(text); m != nil {
		details = m[1] + " " + m[2]
	} else {
		return Command{}, false
	}
	c := Command{Kind: CmdAddContact}
	c.Email = emailRe.FindString(details)
	details = strings.Replace(details, c.Email, " ", 1)
	if p := phoneRe.FindString(details); p != "" {
		c.Phone = strings.TrimSpace(p)
		details = strings.Replace(details, p, " ", 1)
	}
	var name []string
	for _, w := range strings.Fields(strings.NewReplacer(",", " ", ";", " ", ":", " ").Replace(details)) {
		switch strings.ToLower(w) {
		case "email", "e-mail", "mail", "phone", "number", "mobile", "cell", "tel", "with", "and", "is", "at", "named", "called", "whose":
			continue
		}
		name = append(name, w)
	}
	c.Text = strings.Join(name, " ")
	return c, true
}

func contactField(word string) string {
	switch w := strings.ToLower(word); {
	case strings.Contains(w, "mail"):
		return "email"
	case strings.Contains(w, "detail") || strings.Contains(w, "info"):
		return ""
	default:
		return "phone"
	}
}

func parseTasks(text string, now time.Time) (Command, bool) {
	if m := removeRe.FindStringSubmatch(text); m != nil {
		if m[3] != "" {
			return Command{Kind: CmdRemoveTask, Items: splitItems(m[3])}, true
		}
		return Command{Kind: CmdRemoveTask, Items: splitItems(m[1]), List: listName(m[2])}, true
	}
	if m := addToList.FindStringSubmatch(text); m != nil && !strings.Contains(strings.ToLower(m[2]), "calendar") {
		c := Command{Kind: CmdAddTask, List: listName(m[2])}
		items := m[1]
		if w, rest, ok := ParseWhen(items, now); ok {
			c.When, c.HasWhen, items = w, true, rest
		}
		c.Items = splitItems(items)
		return c, len(c.Items) > 0
	}
	if m := addToMyList.FindStringSubmatch(text); m != nil {
		c := Command{Kind: CmdAddTask, List: "todo"}
		c.When, m[1], c.HasWhen = whenOf(m[1], now)
		c.Items = splitItems(m[1])
		return c, len(c.Items) > 0
	}
	if m := addTaskRe.FindStringSubmatch(text); m != nil {
		title := m[1] + m[2]
		c := Command{Kind: CmdAddTask, List: "todo"}
		c.When, title, c.HasWhen = whenOf(title, now)
		title = strings.TrimSuffix(strings.TrimSpace(title), " by")
		c.Items = []string{cleanItem(title)}
		return c, c.Items[0] != ""
	}
	if m := needToRe.FindStringSubmatch(text); m != nil {
		if strings.EqualFold(m[1], "do") {
			return Command{Kind: CmdListTasks, List: "todo"}, true
		}
		return Command{Kind: CmdListTasks, List: "shopping"}, true
	}
	if m := listTasksRe.FindStringSubmatch(text); m != nil {
		name, noun := strings.ToLower(strings.TrimSpace(m[1]+m[3])), strings.ToLower(m[2]+m[4])
		for _, other := range []string{"calendar", "reminder", "note", "contact"} {
			if strings.Contains(name, other) {
				return Command{}, false
			}
		}
		c := Command{Kind: CmdListTasks, List: listName(name)}
		if name == "" && noun != "to-dos" && noun != "todos" {
			c.List = "" // "my tasks", "my list": every list
		}
		return c, true
	}
	if m := completeRe.FindStringSubmatch(text); m != nil {
		what := strings.Join(m[1:], "")
		return Command{Kind: CmdCompleteTask, Items: splitItems(what)}, true
	}
	return Command{}, false
}

func whenOf(text string, now time.Time) (When, string, bool) {
	w, rest, ok := ParseWhen(text, now)
	if !ok {
		return When{}, text, false
	}
	return w, rest, true
}

func parseCalendar(text string, now time.Time) (Command, bool) {
	if agendaRe.MatchString(text) && askRe.MatchString(text) {
		c := Command{Kind: CmdAgenda}
		c.When, _, c.HasWhen = ParseWhen(text, now)
		return c, true
	}
	m := scheduleRe.FindStringSubmatch(text)
	if m == nil {
		return Command{}, false
	}
	verb := strings.ToLower(strings.Fields(text)[0])
	if (verb == "add" || verb == "put" || verb == "create" || verb == "new" || verb == "i" || verb == "there's" || verb == "there") && !eventWords.MatchString(text) {
		return Command{}, false
	}
	rest := calendarTo.ReplaceAllString(m[1], "")
	rest = eventLabel.ReplaceAllString(rest, "")
	c := Command{Kind: CmdSchedule}
	c.When, rest, c.HasWhen = whenOf(rest, now)
	title := cleanItem(rest)
	for _, article := range []string{"a ", "an ", "the "} {
		if len(title) > len(article) && strings.EqualFold(title[:len(article)], article) {
			title = title[len(article):]
			break
		}
	}
	if title == "" {
		title = eventWords.FindString(text)
	}
	c.Text = capitalize(title)
	return c, true
}

// listName normalizes a list's name: "to-do", "to do" and "task" are the to-do list,
// "grocery" and "groceries" the shopping list.
func listName(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.TrimSuffix(n, " list")
	switch n {
	case "", "to-do", "to do", "todo", "task", "tasks", "to-dos", "todos", "things to do":
		return "todo"
	case "grocery", "groceries", "shopping", "shop", "supermarket":
		return "shopping"
	}
	return n
}

// splitItems cuts "milk, eggs and bread" into items.
func splitItems(s string) []string {
	var out []string
	for _, part := range itemSep.Split(s, -1) {
		if item := cleanItem(part); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// cleanItem trims articles-free punctuation and quotes around an item.
func cleanItem(s string) string {
	s = strings.TrimSpace(s)
	s = strings.Trim(s, ` "'“”‘’.,;:!?`)
	for _, prefix := range []string{"the ", "my "} {
		if len(s) > len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
			s = s[len(prefix):]
		}
	}
	return strings.TrimSpace(s)
}

func capitalize(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 || r == utf8.RuneError {
		return s
	}
	return string(unicode.ToUpper(r)) + s[size:]
}
