"""English text templates of the demo feeds (written for FinSentinel; every company is fictional).

Each template is ``(sentiment, title, body)``; ``{slots}`` are filled by :mod:`ingest.demo_feeds`
from the company profile and seeded random numbers. ``GENERIC`` suits any company, ``SECTOR``
only companies of that sector.
"""

from __future__ import annotations

Template = tuple[str, str, str]

GENERIC: tuple[Template, ...] = (
    ("neu", "{co} sets date for {qtr} earnings call",
     "{ref} will publish results for the quarter ended December 31 before the market opens on {month} {dom}, "
     "followed by a call with analysts."),
    ("neu", "{co} names {person} chief operating officer",
     "The appointment takes effect on {month} 1, the company said. {person} joins from {partner}, "
     "where the executive ran global operations."),
    ("neu", "{co} prices {amt} of {n}-year notes",
     "The bonds carry a coupon of {coupon}%, according to a term sheet seen by {outlet}. Proceeds will "
     "refinance debt that falls due next year."),
    ("neu", "{co} reiterates {year} targets at investor day",
     "Executives repeated guidance for growth in {unit} of {pct}% to {pct2}% and offered no new figures. "
     "{ceo} said the focus this year is on {seg}."),
    ("neu", "{co} opens regional headquarters in {city}",
     "The office will house about {jobs} staff by the end of the year, {name} said in a statement."),
    ("neu", "{co} shareholders re-elect board at annual meeting",
     "All {n} nominees won more than 90% of the votes cast, according to a regulatory filing."),
    ("neu", "{co} says talks with {partner} on supply pact at early stage",
     "No agreement has been reached, {name} said in response to a media report, adding that the talks "
     "may not lead to a deal."),
    ("neu", "{co} hires {firm} to review options for {seg} unit",
     "The review could lead to a sale or a spin-off, though no decision has been made, {ceo} told "
     "employees in a memo seen by {outlet}."),
    ("neu", "{co} shares steady after {qtr} results match forecasts",
     "Revenue of {amt} was in line with the average analyst estimate, and earnings per share came in at "
     "{eps}. {Unit} showed little change from a year earlier."),
    ("neu", "{co} CEO {ceo} to speak at {conf} next week",
     "{ceo} is scheduled to present on {month} {dom}. Investors will listen for comments on {unit} and "
     "spending plans."),
    ("neu", "{co} declares quarterly dividend of {div} a share",
     "The payout is unchanged from the previous quarter and is payable on {month} {dom} to shareholders "
     "of record."),
    ("neu", "{co} extends {amt} credit facility by two years",
     "The revolving facility, arranged by a group of {n} banks, now matures in 2031, a filing showed."),
    ("neu", "{co} buys {small}% stake in {partner}",
     "Financial terms were not disclosed. The stake gives {name} one seat on the board of {partner}."),
    ("neu", "{co} expects {unit} roughly flat in first quarter",
     "The outlook, given in a trading update, is in line with the range the company set in January."),
    ("neu", "{co} keeps {year} capital spending plan at {amt}",
     "Most of the money will go to {seg}, chief financial officer {cfo} said on a call."),
    ("neu", "{co} declines to comment on report of possible asset sale",
     "{name} said it reviews its portfolio regularly and does not comment on market speculation."),
    ("neu", "{co} appoints {person} as independent director",
     "{person} previously sat on the audit committee of {partner}. The board now has {n} independent members."),
    ("neu", "Index provider adds {co} to regional benchmark",
     "The change takes effect after the close on {month} {dom}; funds that track the index will need to "
     "buy the shares."),
    ("neu", "{co} trading volume jumps with no company news",
     "Turnover in {tag} was about {n} times its 30-day average by midday. The company said it was not aware "
     "of any undisclosed information."),
    ("neu", "{co} sets target to cut emissions {big}% by 2030",
     "The plan, published with its sustainability report, covers direct operations and purchased power."),
    ("neu", "{co} moves {seg} business into separate subsidiary",
     "The reorganisation will not change reported segments, {cfo} said, and no job cuts are planned."),
    ("neu", "{co} files annual report with no change to auditor",
     "The filing repeats previously reported figures, including full-year revenue of {amt}."),
    ("neu", "{co} to hold special meeting on proposed share split",
     "Shareholders will vote on a {n}-for-one split on {month} {dom}. The board recommends approval."),
    ("neu", "{co} confirms {cfo} will stay on as finance chief through {year}",
     "The confirmation follows questions from analysts about succession plans at the top of the company."),
    ("pos", "{co} beats estimates as {qtr} profit rises {big}%",
     "Net income climbed to {amt}, or {eps} a share, ahead of the {est} analysts had expected. "
     "{Unit} grew {pct}% from a year earlier."),
    ("pos", "{co} raises full-year outlook on strong demand for {prod}",
     "The company now sees {unit} rising {pct2}% this year, up from an earlier forecast of {pct}%."),
    ("pos", "{firm} upgrades {co} to {rating_up}, lifts target to {target}",
     "The broker raised its price target from {low_target}, saying the market underestimates the growth "
     "of {seg}."),
    ("pos", "{co} unveils {amt} share buyback",
     "The repurchase programme runs through the end of next year and is equal to about {pct}% of the "
     "shares outstanding."),
    ("pos", "{co} shares jump {pct2}% after winning contract from {partner}",
     "The multi-year agreement is worth about {amt}, according to people familiar with the terms."),
    ("pos", "{co} lifts quarterly dividend {big}%",
     "The increase, the largest in five years, reflects strong cash generation, {cfo} said."),
    ("pos", "{co} lands {amt} multi-year deal with {partner}",
     "Analysts at {firm} said the contract could add about {pct}% to annual revenue from next year."),
    ("pos", "{agency} upgrades {co} credit rating to {grade}",
     "The agency cited lower leverage and steady cash flow. The outlook on the rating is stable."),
    ("pos", "{co} posts record {unit}, topping forecasts",
     "{Unit} rose {big}% from a year earlier, well above the consensus estimate."),
    ("pos", "{co} stock hits all-time high as margins widen",
     "{tag} rose as much as {pct}% to {price}. Operating margin improved for a {ordinal} straight quarter."),
    ("pos", "{co} rises {pct}% in early trade after strong sales update",
     "Sales in the first two months of the year were ahead of plan, {ceo} told analysts."),
    ("neg", "{co} misses profit forecasts as costs climb; shares slip {pct}%",
     "Earnings per share of {eps} fell short of the {est} analysts expected. Higher input and labour "
     "costs weighed on margins."),
    ("neg", "{firm} downgrades {co} to {rating_down} on valuation",
     "The broker cut its target to {low_target}, saying the stock already prices in the growth it expects "
     "in {seg}."),
    ("neg", "{co} cuts {year} revenue forecast, citing weaker demand",
     "The company now expects {unit} to fall {pct}%, after earlier guiding for modest growth."),
    ("neg", "{co} fined {amt_small} over disclosure lapses",
     "The regulator said {name} was late in reporting a related-party transaction. The company said it "
     "has strengthened its controls."),
    ("neg", "{co} head of {seg} resigns; shares fall {pct}%",
     "The company gave no reason for the departure and said a search for a successor has begun."),
    ("neg", "{partner} sues {co} over contract dispute",
     "The lawsuit seeks damages of about {amt_small}. {name} said the claims are without merit."),
    ("neg", "{co} suspends operations at {city} site after equipment failure",
     "The company expects the halt to last about {n} weeks and is assessing the effect on {unit}."),
    ("neg", "{agency} puts {co} on review for downgrade",
     "The agency said rising debt and weaker cash flow could push leverage above its threshold."),
    ("neg", "{co} to cut {jobs} jobs as {unit} growth slows",
     "The reductions, about {pct}% of the workforce, will cost {amt_small} in severance, the company said."),
)

SECTOR: dict[str, tuple[Template, ...]] = {
    "auto": (
        ("neu", "{co} February deliveries steady at {deliv} vehicles",
         "The {model} accounted for about half of the total, the company said in its monthly update."),
        ("neu", "{co} unveils refreshed {model} at {city} event",
         "The update adds a larger battery and driver-assistance features. Prices start at {price_car}."),
        ("neu", "{co} and {partner} to build charging network in {n} provinces",
         "The companies plan about {jobs} fast-charging stations by the end of next year."),
        ("pos", "{co} February deliveries surge {big}% on {model} demand",
         "Deliveries reached {deliv} vehicles, a record for the month, helped by strong orders in {city}."),
        ("pos", "{co} signs {amt} battery supply deal to support ramp-up",
         "The agreement secures cells for the {model} through 2028."),
        ("neg", "{co} cuts {model} prices by up to {pct2}% as price war deepens",
         "Analysts at {firm} said the cuts could take {pct} percentage points off gross margin."),
    ),
    "energy": (
        ("neu", "{co} asks regulators to raise electricity rates {pct}%",
         "The request, filed on {wd}, would take effect next year if approved."),
        ("neu", "{co} starts construction of {project}",
         "The project is due to enter service in 2028 and will cost about {amt}."),
        ("neu", "{co} power sales flat as mild weather offsets customer growth",
         "Retail electricity sales were little changed in the quarter, while the customer count rose {pct}%."),
        ("pos", "{co} wins regulatory approval for {project}",
         "The approval clears the way for construction to begin this year, {ceo} said."),
        ("pos", "{co} signs 20-year power purchase agreement with {partner}",
         "The agreement covers output from {project} and supports the project's financing."),
        ("neg", "{co} shares fall after regulators trim requested rate increase",
         "The commission allowed about half of the increase {name} had sought, citing affordability."),
    ),
    "broker": (
        ("neu", "{co} margin financing balance steady at {yuan_bn}",
         "Brokerage turnover in February was similar to January, the company said in a monthly report."),
        ("neu", "{co} to sell {yuan_bn} of short-term financing bonds",
         "The notes will be used to fund day-to-day operations, according to an exchange filing."),
        ("neu", "{co} says IPO underwriting pipeline holds at {n} deals",
         "Most of the deals are waiting for regulatory review, the head of investment banking said."),
        ("pos", "{co} profit jumps {big}% as trading volumes rebound",
         "Brokerage commissions and proprietary trading income both rose from a year earlier."),
        ("pos", "{co} wins licence to offer cross-border wealth products",
         "The licence lets clients of {app} buy funds in Hong Kong, a business analysts expect to grow quickly."),
        ("neg", "{co} receives regulatory warning over research practices",
         "The regulator said some reports lacked adequate review. The firm said it would rectify the issues."),
    ),
    "pharma": (
        ("neu", "{co} to present {drug} data at {conf_med}",
         "Full results from the mid-stage study in {indication} will be presented on {month} {dom}."),
        ("neu", "{co} starts mid-stage trial of {drug2} in {indication2}",
         "The study will enroll about {jobs} patients across {n} countries."),
        ("neu", "{co} completes enrollment in late-stage {drug} study",
         "Top-line data are expected in the second half of the year, the company said."),
        ("pos", "{co}'s {drug} meets main goal in late-stage {indication} trial",
         "Patients on the drug showed a statistically significant improvement versus placebo. "
         "{co} plans to file for approval this year."),
        ("pos", "U.S. regulator approves {co}'s {drug} for {indication}",
         "Analysts at {firm} estimate peak annual sales of {amt}."),
        ("neg", "{co} shares drop as {drug2} trial misses primary endpoint",
         "The drug failed to beat placebo in patients with {indication2}. {co} said it will review the data."),
    ),
    "semi": (
        ("neu", "{co} says {node} line on schedule for {month} start",
         "Trial production has begun and yields are in line with plan, the company said."),
        ("neu", "{co} plans {yuan_bn} private placement to fund new fab",
         "The share sale requires approval from shareholders and the exchange."),
        ("neu", "{co} and {partner} sign memorandum on advanced packaging",
         "The companies will jointly develop packaging for the {chip}."),
        ("pos", "{co} wins {chip} orders from {n} data-centre customers",
         "The orders are worth about {amt} and will ship over the next 18 months."),
        ("pos", "{co} posts record wafer shipments, lifts capital spending",
         "Shipments rose {big}% in the quarter; utilisation of its {node} lines is near full."),
        ("neg", "{co} warns first-quarter margins will narrow as utilisation dips",
         "Gross margin is expected at {pct2}% to {big}%, below analysts' estimates."),
    ),
    "bank": (
        ("neu", "{co} net interest margin holds at {nim}%",
         "Loan growth of {pct}% offset slightly higher deposit costs, the bank said."),
        ("neu", "{co} completes sale of {amt} loan portfolio to {partner}",
         "The sale frees capital for lending to small businesses, {cfo} said."),
        ("neu", "{co} passes annual stress test with capital buffer intact",
         "The bank's capital ratio stayed above the required minimum under the severe scenario."),
        ("pos", "{co} profit beats forecasts as deposit costs ease",
         "Net interest income rose {pct2}%, and provisions for bad loans fell from a year earlier."),
        ("pos", "{co} expands capital return plan on strong capital ratio",
         "The bank will buy back up to {amt} of stock in addition to its dividend."),
        ("neg", "{co} sets aside more for bad loans as office property stress grows",
         "Provisions rose to {amt_small} in the quarter, and shares fell {pct}% in early trade."),
    ),
    "food": (
        ("neu", "{co} launches plant-based {brand} range in {n} markets",
         "The products will be sold through supermarkets from next month."),
        ("neu", "{co} holds prices steady despite swings in cocoa costs",
         "The company said its hedges cover most of this year's needs."),
        ("neu", "{co} to close {city} warehouse as it consolidates distribution",
         "About {jobs} workers will be offered roles at other sites."),
        ("pos", "{co} volumes rebound as {brand} wins more shelf space",
         "Organic sales rose {pct2}%, with volumes up for the first time in six quarters."),
        ("pos", "{co} raises margin target as cost programme runs ahead of plan",
         "The company now expects savings of {amt} by next year."),
        ("neg", "{co} recalls some {brand} packs over labelling error",
         "The packs did not list an allergen. The company said no illnesses have been reported."),
    ),
    "cloud": (
        ("neu", "{co} opens new data-centre region in {city}",
         "The region offers compute and storage services to customers with local data rules."),
        ("neu", "{co} rolls out {platform} AI tools to enterprise customers",
         "The tools will be included in existing plans at no extra cost until the end of the year."),
        ("neu", "{co} to buy software start-up {partner}",
         "Terms were not disclosed. The deal is expected to close in the second quarter."),
        ("pos", "{co} annual recurring revenue tops {amt}, beating guidance",
         "Net revenue retention rose to {nrr}%, and the number of large customers grew {big}%."),
        ("pos", "{co} signs multi-year cloud agreement with {partner}",
         "The deal moves {partner}'s core systems onto {platform}."),
        ("neg", "{co} hit by hours-long outage across {n} regions",
         "Customers reported failed logins and slow services; the company blamed a faulty network update."),
    ),
}

SOCIAL: tuple[Template, ...] = (
    ("neu", "{tag} results out on {month} {dom}. Anyone have the consensus EPS handy?", ""),
    ("neu", "Watching {tag} around {price}. Been range-bound all week", ""),
    ("neu", "{tag} volume picking up into the close, no news that I can find", ""),
    ("neu", "What is the bull case for {tag} at these levels? Genuinely asking", ""),
    ("neu", "Holding {tag} through the {unit} update. Not adding, not trimming", ""),
    ("neu", "Reminder for income folks: {tag} goes ex-dividend soon", ""),
    ("neu", "Anyone listen to the {co} investor day? Curious what they said about {seg}", ""),
    ("neu", "{tag} options flow pretty balanced today, calls and puts about even", ""),
    ("pos", "{tag} breaking out above {price} on heavy volume. Added to my position", ""),
    ("pos", "Really solid quarter from {tag}, margins way better than I expected", ""),
    ("pos", "{tag} up {pct}% today and I think it has room to run", ""),
    ("pos", "Long {tag}. Management is executing and the balance sheet is clean", ""),
    ("pos", "{tag} buyback plus a dividend hike. Happy shareholder here", ""),
    ("neg", "Sold my {tag} today. Guidance was weak and the call did not help", ""),
    ("neg", "{tag} can't catch a bid. Down {pct}% and no support in sight", ""),
    ("neg", "Not liking the cash burn at {tag}. Trimming before it gets worse", ""),
    ("neg", "{tag} management keeps missing its own targets. I'm out", ""),
    ("neg", "That {firm} downgrade on {tag} hurts. Stock looks heavy", ""),
)

MACRO: tuple[Template, ...] = (
    ("neu", "Treasury yields little changed ahead of jobs report",
     "The 10-year yield stood at {yld}% in early trading as investors waited for Friday's payrolls data."),
    ("neu", "Dollar steady against yen as traders await central bank minutes",
     "The dollar traded at {usdjpy} yen. The euro was little changed at {eurusd}."),
    ("neu", "Asian shares mixed as investors weigh China factory data",
     "Japan's Nikkei rose {pct_small}%, while Hong Kong's Hang Seng slipped {pct_small2}%."),
    ("neu", "European stocks open flat as banks offset weaker miners",
     "The pan-European STOXX 600 was little changed in early trade."),
    ("neu", "Fed official says policy is well positioned for now",
     "Fed governor {official} told a conference that the central bank can wait for more data before "
     "changing rates."),
    ("neu", "Oil holds near ${oil} as traders assess OPEC+ supply plans",
     "Brent crude futures were little changed, while U.S. crude traded {oil_gap} dollars lower."),
    ("neu", "Gold little changed at ${gold} an ounce",
     "Bullion held in a narrow range as the dollar steadied."),
    ("neu", "Euro zone inflation eases to {infl}% in February, flash estimate shows",
     "Core inflation, which strips out food and energy, was {infl2}%."),
    ("neu", "China's factory activity expands slightly in February; PMI at {pmi}",
     "A reading above 50 indicates expansion. New export orders were little changed."),
    ("neu", "U.S. stock futures flat before the open",
     "Futures on the S&P 500 and the Nasdaq were within {pct_small}% of their previous close."),
    ("pos", "Stocks rally as cooler inflation lifts rate-cut hopes; S&P 500 up {pct_small}%",
     "Technology and consumer shares led gains, and the 10-year yield fell to {yld}%."),
    ("pos", "Hang Seng jumps {pct_idx}% as technology shares rebound",
     "Turnover was above the 20-day average, and mainland investors were net buyers."),
    ("pos", "U.S. consumer confidence rises more than expected",
     "The index climbed to {conf_idx}, its highest in six months, on a brighter view of the job market."),
    ("pos", "Emerging-market currencies gain as dollar retreats",
     "The won, the rupiah and the rand all rose against the dollar."),
    ("neg", "Stocks slide as bond yields jump; Nasdaq down {pct_idx}%",
     "The 10-year Treasury yield rose to {yld}%, pressuring technology shares."),
    ("neg", "Oil tumbles {pct_oil}% on demand worries",
     "Brent crude fell to ${oil} a barrel after weak industrial data from Europe."),
    ("neg", "Hong Kong shares drop to two-week low as property stocks slump",
     "The Hang Seng fell {pct_idx}%; a gauge of developers lost more than 3%."),
    ("neg", "Global bond sell-off deepens as traders pare rate-cut bets",
     "Yields on 30-year bonds rose in the U.S., Germany and Japan."),
)

# Context sentences appended to some news bodies, so that bodies vary beyond their template.
CONTEXT: tuple[str, ...] = (
    "Shares of {name} have {ytd} so far this year.",
    "The company did not respond to a request for further comment.",
    "{name} is due to report first-quarter results in late April.",
    "{firm} rates the stock {rating_any}.",
    "The stock trades at about {pe} times expected earnings.",
    "{tag} closed at {price} in the previous session.",
)

# The Aurora Motors episode on day 2: (minutes after 09:00 UTC, feed role, title, body); each a
# distinct story. Feed roles: rss1 = Harbor Wire, rss2 = Ledger Daily, api = news API, social.
EPISODE: tuple[tuple[int, str, str, str], ...] = (
    (4, "rss1", "Aurora Motors recalls 48,000 Lumina SUVs over battery fire risk",
     "Aurora Motors (Nasdaq: AURM) said on Tuesday it would recall 48,000 Lumina SUVs after three vehicles "
     "caught fire while parked. The company said a defect in battery modules from one production line could "
     "cause a short circuit, and told owners not to charge the cars above 80% until they are repaired."),
    (21, "api", "Regulators open fraud investigation into Aurora Motors' accounting",
     "Securities regulators have opened a formal investigation into whether Aurora Motors overstated revenue "
     "and vehicle deliveries over the past two years, the company disclosed in a filing. Aurora said it would "
     "cooperate fully."),
    (36, "rss2", "Aurora Motors CFO Zhou Wenbin resigns with immediate effect",
     "Chief financial officer Zhou Wenbin has stepped down effective immediately, Aurora Motors said, hours "
     "after disclosing a regulatory probe into its accounting. The company has not named a successor."),
    (52, "rss1", "Aurora Motors shares plunge 21% before the bell as recall and probe hit",
     "Shares of Aurora Motors fell 21% in premarket trading, on track for their worst day since listing, after "
     "the electric-car maker announced a battery recall and a fraud investigation on the same morning."),
    (63, "social", "$AURM down 20% premarket. Recall, fraud probe and the CFO quits, all before breakfast. "
     "Not touching this", ""),
    (78, "api", "Brokers slash Aurora Motors price targets; Halden & Co cuts to Sell",
     "At least four brokerages cut their ratings on Aurora Motors on Tuesday. Halden & Co downgraded the stock "
     "to Sell and halved its target, saying the probe raises questions about every reported number."),
    (94, "rss2", "Battery supplier halts shipments to Aurora Motors pending fire investigation",
     "A key battery supplier has stopped deliveries to Aurora Motors until the cause of the fires is "
     "established, two people familiar with the matter said, threatening production at the Shenzhen plant."),
    (111, "rss1", "Investors file class action against Aurora Motors over delivery figures",
     "A shareholder lawsuit filed in New York accuses Aurora Motors and its executives of misleading investors "
     "about vehicle deliveries and seeks unspecified damages."),
    (129, "api", "Aurora Motors bonds slump as fraud probe rattles creditors",
     "Aurora Motors' dollar bonds due 2029 fell more than 12 cents on the dollar, and the cost of insuring its "
     "debt against default jumped to a record."),
    (163, "rss2", "Aurora Motors delays annual results as audit committee reviews accounts",
     "Aurora Motors postponed its annual results, due next week, saying its audit committee needs time to "
     "review the matters raised by regulators. Its auditor declined to comment."),
    (181, "rss1", "Aurora Motors order cancellations surge after fire recall, dealers say",
     "Dealers in three cities reported a wave of cancelled orders and requests for refunds after the recall, "
     "and some said they had stopped taking new deposits."),
    (201, "api", "Second Aurora Auto battery fire reported in Shenzhen car park",
     "Fire officials said a parked Aurora Lumina caught fire overnight in a residential car park, the fourth "
     "such incident this month. No one was injured, but six nearby cars were damaged."),
    (218, "social", "$AURM now down 27%. Every headline this morning is worse than the last one. "
     "Glad I sold last month", ""),
)

# Neutral follow-ups after the episode.
AFTERMATH: tuple[tuple[int, str, str, str], ...] = (
    (290, "rss1", "Aurora Motors says it is cooperating with regulators, names interim finance chief",
     "Aurora Motors said treasurer Grace Lin would serve as interim chief financial officer and that it was "
     "providing documents requested by regulators."),
    (470, "rss2", "What Aurora Motors' recall covers and what owners should do",
     "The recall covers Lumina SUVs built between May and November last year. Owners will be contacted by "
     "letter and can book a free inspection at any service centre."),
)
