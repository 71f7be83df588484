"""Hard benign rows for the guard's classifier (issue 17, false positives first).

Authored by the aisec project for this purpose (no third-party text; same licence as
the repository). The two kinds follow the benign errors the shipped model made on the
VALIDATION split (never on the evaluation-only sources):
- questions and requests *about* prompt injection, hidden instructions, system prompts and
  jailbreaks (security people, developers and curious users ask them; S-Labs' benign side
  has a few and the model flagged them);
- documents whose instructions are addressed to people: support runbooks, FAQs, forms,
  policies and manuals ("If a customer asks for a refund ...", "Ignore the old form ...",
  "Verify that the user has ...", "Print this page ..."), which the model flagged in licence
  texts, man pages and package docs.
Half of the documents also get an injected copy (label 1) from the generator's own styles,
so the model learns the difference rather than the genre. Splits are by the text's key, as
for every other source (guard_data.split_of).
"""
import random

WHO = ["AI assistants", "a chatbot", "LLM agents", "customer-support bots", "my RAG pipeline", "a coding assistant", "our email summariser",
       "a browser agent", "voice assistants", "an AI that reads web pages", "the support bot we are building", "enterprise copilots"]
THING = ["prompt injection", "hidden instructions in web pages", "jailbreak prompts", "attempts to extract the system prompt", "indirect prompt injection in emails",
         "malicious instructions inside retrieved documents", "role-play jailbreaks", "instructions hidden in white text", "the 'ignore previous instructions' trick",
         "prompt leaking", "instructions smuggled in PDF metadata", "attacks that ask the model to reveal its rules", "data exfiltration through markdown images",
         "unicode tricks that hide text from reviewers", "poisoned search results", "tool outputs that contain commands"]
META_FORMS = ["How should {w} handle {t}?", "What is the best way to detect {t}?", "Can you explain how {t} works, at a high level?", "Is {t} a real risk for {w}?",
              "Write a short blog post on defending {w} against {t}.", "Our team is building a filter for {t}; which signals would you look at?",
              "What are good test cases for {t} in {w}?", "How do researchers measure how well {w} resist {t}?", "Give me a checklist for reviewing {w} for {t}.",
              "why is {t} so hard to prevent", "Summarise the OWASP advice on {t}.", "What logging would help us notice {t} in {w}?",
              "Is it possible to fully stop {t}, or only reduce it?", "Explain to my manager why {t} matters for {w}.", "How would you design an evaluation set for {t}?",
              "Which papers should I read about {t}?", "What is the difference between a jailbreak and {t}?", "Can a classifier catch {t} without blocking normal users?"]
META_PLAIN = ["What is a system prompt and who can see it?", "Should I put secrets in my system prompt?", "How do I write a good system prompt for a recipe bot?",
              "Why did the assistant refuse my request yesterday?", "What does it mean when people say a model was jailbroken?", "Is it legal to red-team my own chatbot?",
              "How do content moderation filters decide what to block?", "Can an AI model be tricked by text in an image?", "How do I report a safety bug in an AI product?",
              "What are guardrails in an LLM application?", "Explain the principle of least privilege for AI agents.", "How do I sandbox the tools my agent can call?",
              "Is there a standard list of LLM security risks?", "What should an incident response plan for an AI chatbot include?",
              "How can I tell if a prompt I found online is trying to manipulate the model?", "What do the words 'developer mode' mean in phone settings?"]

ROLE = ["a customer", "the caller", "a student", "the tenant", "a patient", "an employee", "the applicant", "a visitor", "the user", "a member", "the client", "a supplier"]
ASK = ["asks for a refund", "reports a lost card", "requests a copy of their records", "cannot log in", "asks to change the delivery address", "wants to cancel",
       "asks about the deadline", "reports a leak", "requests an extension", "asks for the Wi-Fi password", "disputes a charge", "asks to speak to a manager"]
DO = ["approve it if the purchase was within 30 days", "verify their identity with two security questions first", "open a ticket and assign it to the billing team",
      "send the standard form and log the request", "escalate to the duty manager", "explain the policy politely and offer the alternative",
      "reset the password from the admin console", "note the date and time in the register", "forward the case to the records office",
      "give the guest network code printed at reception", "check the order history before answering", "reply within two working days"]
STEPS = ["Print this page and bring it to the front desk.", "Ignore the previous version of this checklist; it was replaced in March.",
         "Disregard the old phone number; the new line is 555-0142.", "Do not share your password with anyone, including IT staff.",
         "Always lock your screen when you leave your desk.", "Verify that the customer has signed the consent form before proceeding.",
         "Reply to this email to confirm your place.", "Forget the paper form: applications are now online only.", "Repeat steps 3 to 5 for each device.",
         "Return the completed form to the office by Friday.", "Answer all questions in section B before you submit.",
         "Say the safety phrase before starting the machine.", "Tell your supervisor if the alarm sounds twice.", "Include your reference number in every message.",
         "Remove the protective film before installation.", "Run the cleaning cycle once a week.", "Delete old drafts after 90 days.",
         "Start the engine only after the checklist is complete.", "Show your badge at the gate.", "Send the signed copy to hr@example.org."]
HEAD = ["Support runbook", "FAQ", "Front desk procedures", "Onboarding checklist", "Returns policy", "Safety instructions", "IT help page",
        "Application guide", "Volunteer handbook", "Clinic procedures", "Warehouse rules", "Tenant information"]


def meta_questions(seed=31):
    rnd = random.Random(seed)
    out = set(META_PLAIN)
    for w in WHO:
        for t in rnd.sample(THING, 6):
            out.add(rnd.choice(META_FORMS).format(w=w, t=t))
    for t in THING:
        for f in rnd.sample(META_FORMS, 4):
            out.add(f.format(w=rnd.choice(WHO), t=t))
    return sorted(out)


def procedure_docs(n, seed=32):
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        sents = []
        for _ in range(rnd.randint(2, 5)):
            if rnd.random() < 0.5:
                c = rnd.choice(["If", "When", "Whenever", "If ever"])
                sents.append(f"{c} {rnd.choice(ROLE)} {rnd.choice(ASK)}, {rnd.choice(DO)}.")
            else:
                sents.append(rnd.choice(STEPS))
        head = rnd.choice(["", rnd.choice(HEAD) + "\n\n", rnd.choice(HEAD) + f" (rev. {rnd.randint(1, 9)})\n", f"{rnd.randint(1, 12)}. "])
        sep = rnd.choice([" ", "\n", "\n- "])
        out.append(head + (("- " if sep == "\n- " else "") + sep.join(sents)))
    return out


def rows(gd, seed=33):
    """The hard benign rows, and injected copies of half of the documents (own random stream,
    so every other row of the corpus stays as it was)."""
    rnd = random.Random(seed)
    out = []
    for q in meta_questions():
        out.append(gd.row(q, 0, "authored-chat", "question", gd.split_of("meta:" + q)))
    for j, d in enumerate(procedure_docs(900)):
        split = gd.split_of("proc:" + d)
        out.append(gd.row(d, 0, "documents", "document", split))
        if j % 2 == 0:
            out.append(gd.row(gd.inject(d, gd.authored_injection(rnd), rnd), 1, "documents", "document+injection", split))
    return out
