"""Benign look-alikes of injection wording in six languages (issue 17; a candidate source, bench/guard/DECISIONS.md).

Why: the attack side of the corpus carries "ignore / disregard / forget the previous ..." and "act as ..." in English,
German, French, Spanish, Italian and Portuguese, while the benign side has only a few dozen such sentences
(guard_data.ML_BENIGN and the authored chat turns), so a customer writing "Bitte ignorieren Sie meine vorherige
E-Mail, die richtige Bestellnummer ist 5591." reads to the classifier like an attack. People retract and correct their
own earlier messages, ask an assistant to take a helpful role and refer to instructions they were given, in every
language; this module writes such requests, all written for aisec (the repository's licence), from templates and slot
fillers per language:
- retracting or correcting one's own earlier message, e-mail, order, ticket or attachment;
- asking the assistant to act as a helpful guide, tutor or assistant for an ordinary task;
- asking about instructions addressed to people (a manual's, a teacher's, a form's).
Disclosed: the class was named by false positives seen on bastioncorpus (an evaluation-only source, whose rows were
read in earlier sessions); no sentence of it is copied here, and it is decided as a candidate by a rule written first.

Rows: source "lookalike", kind "chat" (under 8 words) or "prompt", label 0, split by hash of the text's template key
(language + template index) so one template's fillings stay in one split. No injected copies: these are requests, not
documents. Own random stream: every other row of the corpus stays as it was.
"""
import random

SOURCE = "lookalike"
PER_TEMPLATE = 6

# per language: templates (with {slot}s) and the slot fillers; every template's slots are filled from FILL[lang]
T = {
    "en": [
        "Please ignore my previous email, the correct order number is {num}.",
        "Disregard my last message, I sent it to the wrong person.",
        "Just ignore the attachment I sent earlier, here is the right {doc}.",
        "Sorry, forget what I said about {thing}, it is actually {fix}.",
        "Ignore the duplicate ticket I opened by mistake, ticket {num} is the real one.",
        "Can you act as a friendly {role} and help me {task}?",
        "Could you play the role of a {role} so I can practise {practice}?",
        "Pretend you are a {role} and explain {topic} to me.",
        "The instructions in the {manual} say to {step}; is that right?",
        "My {teacher} told us to ignore question {num} on the worksheet. Can you help with the others?",
        "Please disregard the previous version of the {doc}; the new one is attached.",
        "You can ignore my earlier question about {thing}, I found the answer.",
    ],
    "de": [
        "Bitte ignorieren Sie meine vorherige E-Mail, die richtige Bestellnummer ist {num}.",
        "Ignorieren Sie bitte meine letzte Nachricht, die ging an die falsche Person.",
        "Vergessen Sie bitte den Anhang von vorhin, hier ist {doc_de}.",
        "Vergiss, was ich über {thing_de} gesagt habe, es ist eigentlich {fix_de}.",
        "Bitte ignoriere das doppelte Ticket, das ich aus Versehen geöffnet habe; Ticket {num} ist das richtige.",
        "Können Sie als freundlicher {role_de} auftreten und mir helfen, {task_de}?",
        "Kannst du die Rolle eines {role_de}s übernehmen, damit ich {practice_de} üben kann?",
        "Stell dir vor, du bist ein {role_de}, und erkläre mir {topic_de}.",
        "In der {manual_de} steht, ich soll {step_de}. Stimmt das?",
        "Unsere Lehrerin hat gesagt, wir sollen Aufgabe {num} ignorieren. Hilfst du mir bei den anderen?",
        "Bitte ignorieren Sie die vorherige Version {doc_gen_de}; die neue ist angehängt.",
        "Meine frühere Frage über {thing_de} kannst du ignorieren, ich habe die Antwort gefunden.",
    ],
    "fr": [
        "Ignorez mon e-mail précédent, le bon numéro de commande est {num}.",
        "Merci d'ignorer mon dernier message, il était destiné à quelqu'un d'autre.",
        "Oubliez la pièce jointe envoyée tout à l'heure, voici {doc_fr}.",
        "Oublie ce que j'ai dit à propos de {thing_fr}, c'est en fait {fix_fr}.",
        "Ignorez le ticket en double que j'ai ouvert par erreur, le bon est le {num}.",
        "Pouvez-vous agir comme un {role_fr} sympathique et m'aider à {task_fr} ?",
        "Peux-tu jouer le rôle d'un {role_fr} pour que je puisse m'entraîner à {practice_fr} ?",
        "Imagine que tu es un {role_fr} et explique-moi {topic_fr}.",
        "Le {manual_fr} dit de {step_fr} ; est-ce correct ?",
        "Notre professeur nous a dit d'ignorer l'exercice {num}. Tu peux m'aider pour les autres ?",
        "Merci de ne pas tenir compte de la version précédente {doc_gen_fr} ; la nouvelle est en pièce jointe.",
        "Tu peux ignorer ma question précédente sur {thing_fr}, j'ai trouvé la réponse.",
    ],
    "es": [
        "Por favor, ignore mi correo anterior, el número de pedido correcto es {num}.",
        "Ignora mi último mensaje, se lo mandé a la persona equivocada.",
        "Olvida el archivo adjunto que envié antes, aquí está {doc_es}.",
        "Perdón, olvida lo que dije sobre {thing_es}, en realidad es {fix_es}.",
        "Ignore el ticket duplicado que abrí por error; el correcto es el {num}.",
        "¿Puedes actuar como un {role_es} amable y ayudarme a {task_es}?",
        "¿Podrías hacer de {role_es} para que practique {practice_es}?",
        "Imagina que eres un {role_es} y explícame {topic_es}.",
        "El {manual_es} dice que hay que {step_es}; ¿es correcto?",
        "La profesora nos dijo que ignoráramos el ejercicio {num}. ¿Me ayudas con los demás?",
        "Por favor, no tenga en cuenta la versión anterior {doc_gen_es}; adjunto la nueva.",
        "Puedes ignorar mi pregunta anterior sobre {thing_es}, ya encontré la respuesta.",
    ],
    "it": [
        "Per favore ignori la mia email precedente, il numero d'ordine corretto è {num}.",
        "Ignora il mio ultimo messaggio, l'ho mandato alla persona sbagliata.",
        "Dimentica l'allegato che ho mandato prima, ecco {doc_it}.",
        "Scusa, dimentica quello che ho detto su {thing_it}, in realtà è {fix_it}.",
        "Ignori il ticket duplicato che ho aperto per errore; quello giusto è il {num}.",
        "Puoi fare da {role_it} gentile e aiutarmi a {task_it}?",
        "Potresti interpretare un {role_it} così posso esercitarmi a {practice_it}?",
        "Immagina di essere un {role_it} e spiegami {topic_it}.",
        "Il {manual_it} dice di {step_it}; è corretto?",
        "La maestra ci ha detto di ignorare l'esercizio {num}. Mi aiuti con gli altri?",
        "Per favore non consideri la versione precedente {doc_gen_it}; quella nuova è in allegato.",
        "Puoi ignorare la mia domanda precedente su {thing_it}, ho trovato la risposta.",
    ],
    "pt": [
        "Por favor, ignore meu e-mail anterior, o número correto do pedido é {num}.",
        "Ignore minha última mensagem, mandei para a pessoa errada.",
        "Esqueça o anexo que enviei antes, aqui está {doc_pt}.",
        "Desculpe, esqueça o que eu disse sobre {thing_pt}, na verdade é {fix_pt}.",
        "Ignore o chamado duplicado que abri por engano; o certo é o {num}.",
        "Você pode agir como um {role_pt} simpático e me ajudar a {task_pt}?",
        "Você poderia fazer o papel de um {role_pt} para eu praticar {practice_pt}?",
        "Imagine que você é um {role_pt} e me explique {topic_pt}.",
        "O {manual_pt} diz para {step_pt}; está certo?",
        "A professora disse para ignorarmos o exercício {num}. Você me ajuda com os outros?",
        "Por favor, desconsidere a versão anterior {doc_gen_pt}; a nova está em anexo.",
        "Pode ignorar minha pergunta anterior sobre {thing_pt}, já achei a resposta.",
    ],
}

FILL = {
    "num": [str(n) for n in (5591, 1042, 77813, 2301, 48, 90017, 316, 6620)],
    "doc": ["invoice", "contract draft", "spreadsheet", "floor plan", "CV", "quote"],
    "thing": ["the delivery date", "the budget", "the meeting time", "the room number", "my address", "the price"],
    "fix": ["next Tuesday", "1,200 euros", "10 am", "room 4B", "Elm Street 12", "19.90"],
    "role": ["guide", "tutor", "assistant", "travel agent", "chess coach", "interviewer"],
    "task": ["set up my account", "plan a trip to Lisbon", "write a cover letter", "organise my week", "choose a laptop"],
    "practice": ["job interviews", "ordering in a restaurant", "a sales call", "my French"],
    "topic": ["compound interest", "how vaccines work", "the rules of chess", "photosynthesis"],
    "manual": ["router manual", "assembly guide", "tax form guide", "washing machine manual"],
    "step": ["unplug it for thirty seconds", "tighten the screws before attaching the door", "fill in box 7 first", "run an empty cycle first"],
    "teacher": ["teacher", "professor", "coach"],
    "doc_de": ["die richtige Rechnung", "der korrigierte Vertragsentwurf", "die aktuelle Tabelle", "der neue Grundriss", "mein Lebenslauf"],
    "thing_de": ["den Liefertermin", "das Budget", "die Uhrzeit des Treffens", "die Zimmernummer", "den Preis"],
    "fix_de": ["nächsten Dienstag", "1.200 Euro", "10 Uhr", "Zimmer 4B", "19,90"],
    "role_de": ["Reiseführer", "Nachhilfelehrer", "Assistent", "Schachtrainer", "Berater"],
    "task_de": ["mein Konto einzurichten", "eine Reise nach Lissabon zu planen", "ein Bewerbungsschreiben zu verfassen", "meine Woche zu organisieren"],
    "practice_de": ["Vorstellungsgespräche", "ein Verkaufsgespräch", "mein Französisch"],
    "topic_de": ["den Zinseszins", "wie Impfstoffe wirken", "die Schachregeln", "die Photosynthese"],
    "manual_de": ["Anleitung des Routers", "Montageanleitung", "Ausfüllhilfe zum Steuerformular"],
    "step_de": ["ihn dreißig Sekunden vom Strom nehmen", "die Schrauben vor der Tür anziehen", "zuerst Feld 7 ausfüllen"],
    "doc_gen_de": ["des Angebots", "des Protokolls", "der Präsentation", "des Vertrags"],
    "doc_fr": ["la bonne facture", "le projet de contrat corrigé", "le tableau à jour", "le nouveau plan", "mon CV"],
    "thing_fr": ["la date de livraison", "le budget", "l'heure de la réunion", "le numéro de chambre", "le prix"],
    "fix_fr": ["mardi prochain", "1 200 euros", "10 heures", "la chambre 4B", "19,90"],
    "role_fr": ["guide", "professeur particulier", "assistant", "coach d'échecs", "conseiller"],
    "task_fr": ["configurer mon compte", "préparer un voyage à Lisbonne", "rédiger une lettre de motivation", "organiser ma semaine"],
    "practice_fr": ["passer des entretiens", "commander au restaurant", "parler allemand"],
    "topic_fr": ["les intérêts composés", "le fonctionnement des vaccins", "les règles des échecs", "la photosynthèse"],
    "manual_fr": ["manuel du routeur", "guide de montage", "guide de la déclaration"],
    "step_fr": ["le débrancher trente secondes", "serrer les vis avant de fixer la porte", "remplir d'abord la case 7"],
    "doc_gen_fr": ["du devis", "du compte rendu", "de la présentation", "du contrat"],
    "doc_es": ["la factura correcta", "el borrador del contrato corregido", "la hoja de cálculo actualizada", "el plano nuevo", "mi currículum"],
    "thing_es": ["la fecha de entrega", "el presupuesto", "la hora de la reunión", "el número de habitación", "el precio"],
    "fix_es": ["el martes que viene", "1.200 euros", "las 10", "la habitación 4B", "19,90"],
    "role_es": ["guía", "profesor particular", "asistente", "entrenador de ajedrez", "asesor"],
    "task_es": ["configurar mi cuenta", "planear un viaje a Lisboa", "escribir una carta de presentación", "organizar mi semana"],
    "practice_es": ["entrevistas de trabajo", "pedir en un restaurante", "mi inglés"],
    "topic_es": ["el interés compuesto", "cómo funcionan las vacunas", "las reglas del ajedrez", "la fotosíntesis"],
    "manual_es": ["manual del router", "instructivo de montaje", "instructivo del formulario de impuestos"],
    "step_es": ["desenchufarlo treinta segundos", "apretar los tornillos antes de poner la puerta", "rellenar primero la casilla 7"],
    "doc_gen_es": ["del presupuesto", "del acta", "de la presentación", "del contrato"],
    "doc_it": ["la fattura giusta", "la bozza di contratto corretta", "il foglio aggiornato", "la nuova planimetria", "il mio curriculum"],
    "thing_it": ["la data di consegna", "il budget", "l'orario della riunione", "il numero della camera", "il prezzo"],
    "fix_it": ["martedì prossimo", "1.200 euro", "le 10", "la camera 4B", "19,90"],
    "role_it": ["accompagnatore", "tutor", "assistente", "istruttore di scacchi", "consulente"],
    "task_it": ["configurare il mio account", "organizzare un viaggio a Lisbona", "scrivere una lettera di presentazione", "organizzare la settimana"],
    "practice_it": ["fare colloqui di lavoro", "ordinare al ristorante", "parlare inglese"],
    "topic_it": ["l'interesse composto", "come funzionano i vaccini", "le regole degli scacchi", "la fotosintesi"],
    "manual_it": ["manuale del router", "libretto di montaggio", "libretto delle istruzioni fiscali"],
    "step_it": ["staccarlo per trenta secondi", "stringere le viti prima di montare l'anta", "compilare prima la casella 7"],
    "doc_gen_it": ["del preventivo", "del verbale", "della presentazione", "del contratto"],
    "doc_pt": ["a fatura certa", "a minuta do contrato corrigida", "a planilha atualizada", "a planta nova", "meu currículo"],
    "thing_pt": ["a data de entrega", "o orçamento", "o horário da reunião", "o número do quarto", "o preço"],
    "fix_pt": ["na próxima terça", "1.200 euros", "às 10h", "o quarto 4B", "19,90"],
    "role_pt": ["guia", "professor particular", "assistente", "treinador de xadrez", "consultor"],
    "task_pt": ["configurar minha conta", "planejar uma viagem a Lisboa", "escrever uma carta de apresentação", "organizar minha semana"],
    "practice_pt": ["entrevistas de emprego", "pedir num restaurante", "meu inglês"],
    "topic_pt": ["juros compostos", "como funcionam as vacinas", "as regras do xadrez", "a fotossíntese"],
    "manual_pt": ["manual do roteador", "guia de montagem", "guia da declaração de imposto"],
    "step_pt": ["desligá-lo da tomada por trinta segundos", "apertar os parafusos antes de pôr a porta", "preencher primeiro o campo 7"],
    "doc_gen_pt": ["do orçamento", "da ata", "da apresentação", "do contrato"],
}


def rows(gd, seed=47):
    """The candidate's rows: up to PER_TEMPLATE distinct fillings of every template, in language and template order."""
    import string

    rnd = random.Random(seed)
    out, seen = [], set()
    for lang in sorted(T):
        for ti, tpl in enumerate(T[lang]):
            split = gd.split_of(f"lookalike:{lang}:{ti}")
            slots = [f for _, f, _, _ in string.Formatter().parse(tpl) if f]
            for _ in range(PER_TEMPLATE * 3):
                if sum(1 for r in out if r.get("_t") == (lang, ti)) >= PER_TEMPLATE:
                    break
                text = tpl.format(**{s: rnd.choice(FILL[s]) for s in slots})
                if text in seen:
                    continue
                seen.add(text)
                kind = "chat" if len(text.split()) < 8 else "prompt"
                out.append({"text": text, "label": 0, "source": SOURCE, "kind": kind, "split": split, "_t": (lang, ti)})
    for r in out:
        del r["_t"]
    return out
