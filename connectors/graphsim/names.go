package graphsim

// The word lists the generator draws from. Entries written "native|ascii"
// give the romanized form used for user principal names; every other entry
// is ASCII-folded.

// culture is a coherent pool of given and family names.
type culture struct {
	weight      int
	given       []string
	family      []string
	familyFirst bool // display name is "Family Given" (山田 太郎)
	joinNoSpace bool // display name has no space between the parts (王芳)
}

var cultures = []culture{
	{weight: 30, given: []string{"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Christopher", "Karen", "Daniel", "Emily", "Matthew", "Megan", "Anthony", "Ashley", "Mark", "Amanda", "Andrew", "Rachel", "Adele", "Alex", "Diego", "Lidia", "Patti", "Megan", "Grady", "Isaiah", "Johanna", "Lee", "Lynne", "Miriam", "Nestor", "Pradeep", "Cameron", "Delia", "Mallory", "Siobhán", "Seán", "Aoife"},
		family: []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill", "Green", "Adams", "Baker", "O'Brien", "O'Connor", "Vance", "Wilber", "Holloway", "Fernandez", "Bowen", "Archie", "Cortez", "Dennis", "Price", "Morales", "Gates", "Lambert", "Ní Bhriain"}},
	{weight: 8, given: []string{"José", "María", "Javier", "Lucía", "Alejandro", "Sofía", "Andrés", "Valentina", "Raúl", "Inés", "Sergio", "Beatriz", "Iñaki", "Ángela", "Óscar", "Nuria", "Joaquín", "Elena", "Martín", "Carmen"},
		family: []string{"García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Díaz", "Muñoz", "Álvarez", "Romero", "Jiménez", "Ruiz", "Hernández", "Castaño", "Ibáñez", "Núñez", "Peña"}},
	{weight: 8, given: []string{"Zoë", "Jürgen", "Günter", "Lena", "Jörg", "Anja", "Björn", "Katrin", "Matthias", "Sabine", "Uwe", "Heike", "Lukas", "Jana", "Max", "Käthe", "Sören", "Annika", "Tobias", "Franziska"},
		family: []string{"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Krüger", "Hoffmann", "Groß"}},
	{weight: 4, given: []string{"Łukasz", "Małgorzata", "Paweł", "Agnieszka", "Krzysztof", "Katarzyna", "Michał", "Zofia", "Wojciech", "Joanna", "Grzegorz", "Dorota", "Jędrzej", "Anna", "Piotr"},
		family: []string{"Wójcik", "Kowalski", "Nowak", "Wiśniewski", "Lewandowski", "Kamiński", "Zieliński", "Szymański", "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur", "Krawczyk", "Sikorski"}},
	{weight: 4, given: []string{"Søren", "Åse", "Bjørn", "Ingrid", "Kjetil", "Sigrid", "Ørjan", "Astrid", "Magnus", "Liv", "Anders", "Maja", "Jens", "Freja", "Henrik"},
		family: []string{"Ødegård", "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen", "Jensen", "Sørensen", "Bråten", "Lindqvist", "Åberg", "Strøm"}},
	{weight: 5, given: []string{"François", "Amélie", "Benoît", "Hélène", "Jérôme", "Céline", "Stéphane", "Élodie", "Loïc", "Chloé", "Gaëlle", "Mathieu", "Noémie", "Théo", "Camille"},
		family: []string{"Dubois", "Lefèvre", "Moreau", "Laurent", "Bernard", "Girard", "Bonnet", "Rousseau", "Fontaine", "Chevalier", "Lemaître", "Mercier", "Fèvre", "Barbier", "Garnier"}},
	{weight: 3, given: []string{"Ayşe", "Mehmet", "Özge", "Mustafa", "Elif", "Emre", "Gülşen", "Burak", "Şebnem", "Oğuz", "Zeynep", "Can"},
		family: []string{"Çelik", "Yılmaz", "Kaya", "Demir", "Şahin", "Yıldız", "Öztürk", "Aydın", "Arslan", "Doğan", "Kılıç", "Koç"}},
	{weight: 3, familyFirst: true,
		given:  []string{"太郎|taro", "花子|hanako", "健|ken", "陽菜|hina", "翔|sho", "さくら|sakura", "大輔|daisuke", "美咲|misaki", "拓也|takuya", "由美|yumi"},
		family: []string{"山田|yamada", "佐藤|sato", "鈴木|suzuki", "高橋|takahashi", "田中|tanaka", "伊藤|ito", "渡辺|watanabe", "中村|nakamura", "小林|kobayashi", "加藤|kato"}},
	{weight: 3, given: []string{"Ngọc Anh", "Minh", "Thảo", "Quang", "Hương", "Đức", "Lan", "Tuấn", "Phương", "Hải"},
		family: []string{"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Võ", "Đặng", "Bùi", "Đỗ"}},
	{weight: 3, familyFirst: true, joinNoSpace: true,
		given:  []string{"伟|wei", "芳|fang", "娜|na", "敏|min", "静|jing", "磊|lei", "洋|yang", "艳|yan", "军|jun", "杰|jie"},
		family: []string{"王|wang", "李|li", "张|zhang", "刘|liu", "陈|chen", "杨|yang", "黄|huang", "赵|zhao", "吴|wu", "周|zhou"}},
	{weight: 5, given: []string{"Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Kavya", "Arjun", "Sneha", "Rahul", "Deepika", "Sanjay", "Lakshmi"},
		family: []string{"Sharma", "Patel", "Iyer", "Reddy", "Nair", "Gupta", "Singh", "Kumar", "Menon", "Rao", "Chatterjee", "Desai"}},
	{weight: 4, given: []string{"Giulia", "Marco", "Francesca", "Luca", "Chiara", "Matteo", "Federica", "Niccolò", "Sara", "Davide"},
		family: []string{"Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco"}},
	{weight: 4, given: []string{"João", "Ana", "Gonçalo", "Inês", "Tomás", "Leonor", "Sebastião", "Beatriz", "Luís", "Mariana"},
		family: []string{"Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Martins", "Gonçalves", "Conceição"}},
	{weight: 3, given: []string{"Daan", "Sanne", "Bram", "Fleur", "Joris", "Lotte", "Sem", "Eline", "Thijs", "Roos"},
		family: []string{"de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Visser", "Smit", "Meijer", "de Boer"}},
}

// nonASCIINames guarantee that even a tiny tenant has a user whose name is
// not ASCII.
var nonASCIINames = [][2]string{{"Zoë", "Müller"}, {"José", "García"}, {"Łukasz", "Wójcik"}, {"Søren", "Ødegård"}, {"François", "Lefèvre"}, {"Ayşe", "Çelik"}}

// serviceAccounts are non-person accounts (usually without a mailbox).
var serviceAccounts = []struct{ name, upn string }{
	{"Backup Service", "svc-backup"}, {"Scanner Service", "svc-scanner"}, {"SQL Service", "svc-sql"},
	{"ADFS Sync", "svc-adsync"}, {"Print Service", "svc-print"}, {"Monitoring Agent", "svc-monitoring"},
	{"Conference Room Adams", "confroom-adams"}, {"Conference Room Baker", "confroom-baker"},
	{"Build Agent", "svc-build"}, {"Break Glass Admin", "breakglass"}, {"Kiosk Lobby", "kiosk-lobby"},
	{"Power BI Gateway", "svc-pbigateway"}, {"Intranet Crawler", "svc-crawler"},
}

var externalDomains = []string{"fabrikam.com", "tailspintoys.com", "wingtiptoys.com", "adatum.com", "northwindtraders.com", "litwareinc.com", "woodgrovebank.com", "proseware.com", "gmail.com", "outlook.com", "fourthcoffee.com", "alpineskihouse.com"}

type department struct {
	name   string
	titles []string
}

var departments = []department{
	{"Sales", []string{"Account Executive", "Sales Representative", "Sales Manager", "Regional Sales Director", "Inside Sales Specialist", "Key Account Manager"}},
	{"Marketing", []string{"Marketing Manager", "Content Strategist", "Brand Manager", "Marketing Coordinator", "SEO Specialist", "Product Marketing Manager"}},
	{"Finance", []string{"Accountant", "Financial Analyst", "Controller", "Accounts Payable Clerk", "Finance Director", "Treasury Analyst"}},
	{"Human Resources", []string{"HR Business Partner", "Recruiter", "Talent Acquisition Lead", "HR Generalist", "Payroll Specialist", "Chief People Officer"}},
	{"Engineering", []string{"Software Engineer", "Senior Software Engineer", "Principal Engineer", "Engineering Manager", "Site Reliability Engineer", "QA Engineer", "DevOps Engineer"}},
	{"IT", []string{"IT Administrator", "Helpdesk Technician", "Systems Engineer", "Network Engineer", "IT Manager", "Security Analyst"}},
	{"Legal", []string{"Legal Counsel", "Paralegal", "Compliance Officer", "General Counsel", "Contract Manager"}},
	{"Operations", []string{"Operations Manager", "Operations Analyst", "Facilities Coordinator", "Supply Chain Planner", "Logistics Coordinator"}},
	{"Customer Support", []string{"Support Engineer", "Customer Success Manager", "Support Team Lead", "Technical Account Manager", "Service Desk Agent"}},
	{"Research & Development", []string{"Research Scientist", "Lab Technician", "R&D Manager", "Data Scientist", "Product Designer"}},
	{"Product Management", []string{"Product Manager", "Senior Product Manager", "Product Owner", "Director of Product"}},
	{"Procurement", []string{"Buyer", "Procurement Specialist", "Category Manager", "Vendor Manager"}},
	{"Executive", []string{"Chief Executive Officer", "Chief Financial Officer", "Chief Technology Officer", "Chief Operating Officer", "Executive Assistant"}},
	{"Retail", []string{"Retail Manager", "Store Associate", "Merchandiser", "Store Manager"}},
}

var cities = []string{"Seattle", "New York", "London", "Berlin", "München", "Paris", "Zürich", "Kraków", "Oslo", "København", "Madrid", "São Paulo", "Istanbul", "Tokyo", "Singapore", "Bangalore", "Sydney", "Toronto", "Amsterdam", "Milano"}

// License SKUs (skuId GUIDs as Graph returns them) with relative weights.
var primarySKUs = []struct {
	id     string
	weight int
}{
	{"05e9a617-0261-4cee-bb44-138d3ef5d965", 40}, // SPE_E3 (Microsoft 365 E3)
	{"6fd2c87f-b296-42f0-b197-1e91e994b900", 25}, // ENTERPRISEPACK (Office 365 E3)
	{"06ebc4ee-1bb5-47dd-8120-11324bc54e06", 10}, // SPE_E5 (Microsoft 365 E5)
	{"18181a46-0d4e-45cd-891e-60aabd171b4e", 10}, // STANDARDPACK (Office 365 E1)
	{"4b585984-651b-448a-9e53-3b10f069cf7f", 10}, // DESKLESSPACK (Office 365 F3)
	{"cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", 5},  // SPB (Microsoft 365 Business Premium)
}

var extraSKUs = []string{
	"f8a1db68-be16-40ed-86d5-cb42ce701560", // POWER_BI_PRO
	"c5928f49-12ba-48f7-ada3-0d743a3601d5", // VISIOCLIENT
	"53818b1b-4a27-454b-8896-0dba576410e6", // PROJECTPROFESSIONAL
	"f30db892-07e9-47e9-837c-80727f46fd3d", // FLOW_FREE
	"efccb6f7-5641-4e0e-bd10-b4976e1bf68e", // EMS
}

var unifiedGroupNames = []string{
	"Marketing Team", "Sales Team", "Leadership Team", "Project Phoenix", "Projekt Größe", "Équipe Marketing",
	"Equipo de Ventas", "Book Club", "Social Committee", "Design Guild", "Customer Success", "Product Launch",
	"Engineering", "Finance Team", "HR Team", "New Hire Onboarding", "Wellness & Wellbeing", "Innovation Lab",
	"Data Science", "東京オフィス", "Zürich Office", "Kraków Team", "São Paulo Office", "Brand & Creative",
	"Sustainability", "Diversity & Inclusion", "Volunteering", "Interns", "Architecture Board", "Mark 8 Project Team",
	"Retail", "Digital Initiative Public Relations", "U.S. Sales", "Sales and Marketing", "Remote living",
	"Café Talk", "Møde Planlægning", "Kundeservice", "Développement Produit", "Ventas LATAM",
}

var securityGroupNames = []string{
	"sg-Finance", "sg-HR", "SG-VPN-Users", "APP-Salesforce-Users", "APP-Workday-Users", "Intune-Windows-Devices",
	"Intune-iOS-Devices", "CA-MFA-Exclusions", "Azure-Subscription-Owners", "Print-Operators", "WiFi-Corp-Access",
	"License-E5-Assigned", "Role-Helpdesk-Admins", "SG-Engineering", "SG-Contractors", "SG-Guests-Partners",
	"APP-Jira-Users", "APP-GitHub-Enterprise", "SharePoint-Site-Owners", "PIM-Global-Readers",
}

var mailSecurityGroupNames = []string{
	"Finance Approvers", "IT Security Alerts", "Payroll Admins", "Server Admins", "Incident Response",
	"Legal Hold Reviewers", "Security Champions", "Privileged Access Reviewers",
}

var distributionGroupNames = []string{
	"DL-Announcements", "All Managers", "Sales Managers", "Company Newsletter", "Board Updates", "Office Berlin",
	"Office Seattle", "Press Contacts", "Partner Updates", "IT Change Notifications", "Customer Escalations",
}

var codenames = []string{"Atlas", "Orion", "Nebula", "Everest", "Aurora", "Zephyr", "Mistral", "Sirocco", "Hyperion", "Odyssey", "Quantum", "Falcon", "Pegasus", "Titan", "Vega", "Kestrel", "Lumière", "Nordlys", "Fénix", "Kilimanjaro"}

var teamSuffixes = []string{"Team", "Community", "Projects", "Leads", "Updates", "Working Group", "Champions"}

var securityApps = []string{"Salesforce", "Workday", "ServiceNow", "Jira", "Confluence", "Zoom", "Slack", "Tableau", "SAP", "Okta", "Box", "Dropbox", "Adobe", "Figma", "DocuSign"}

var contactCompanies = []string{"Fabrikam", "Tailspin Toys", "Wingtip Toys", "A. Datum", "Northwind Traders", "Litware", "Woodgrove Bank", "Proseware", "Fourth Coffee", "Alpine Ski House"}

var deviceModels = []struct{ manufacturer, model, os, version string }{
	{"Microsoft Corporation", "Surface Laptop 5", "Windows", "10.0.22631.3447"},
	{"Dell Inc.", "Latitude 7440", "Windows", "10.0.22631.3296"},
	{"LENOVO", "ThinkPad X1 Carbon Gen 11", "Windows", "10.0.19045.4170"},
	{"HP", "EliteBook 840 G10", "Windows", "10.0.22621.3155"},
	{"Apple", "MacBookPro18,3", "MacMDM", "14.4.1"},
	{"Apple", "iPhone 15", "iOS", "17.4.1"},
	{"samsung", "SM-S918B", "Android", "14.0"},
}
